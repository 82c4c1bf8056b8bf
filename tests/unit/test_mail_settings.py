"""SMTP settings: how SMTP_URL says where and how mail goes, and what a bad value says."""

from __future__ import annotations

import pytest

from infra.mail.smtp import SmtpUrlError, parse_smtp_url
from infra.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtps://u:p@mail.example.org", ("mail.example.org", 465, True, False, "u", "p")),
        ("smtp://u:p%40x@mail.example.org", ("mail.example.org", 587, False, True, "u", "p@x")),
        ("smtp://relay:25?tls=none", ("relay", 25, False, False, None, None)),
    ],
)
def test_smtp_urls(url, expected):
    target = parse_smtp_url(url)
    assert (
        target.host,
        target.port,
        target.implicit_tls,
        target.starttls,
        target.username,
        target.password,
    ) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "smtp://",
        "smtps://h?tls=none",
        "smtp://h?tls=maybe",
        "smtp://h:x",
    ],
)
def test_bad_smtp_urls_are_refused(url):
    with pytest.raises(SmtpUrlError):
        parse_smtp_url(url)


def test_a_bad_smtp_url_stops_the_start_without_showing_its_password(tmp_path):
    with pytest.raises(SettingsError) as refused:
        load_settings({"PHR_DATA_DIR": str(tmp_path), "SMTP_URL": "smtp://u:hunter2@h:x"})
    assert "SMTP_URL" in str(refused.value) and "hunter2" not in str(refused.value)


def test_verification_switch_and_sender(tmp_path):
    base = {"PHR_DATA_DIR": str(tmp_path)}
    assert load_settings(base).email_verification is True
    assert load_settings(base | {"PHR_EMAIL_VERIFICATION": "off"}).email_verification is False
    with pytest.raises(SettingsError, match="PHR_EMAIL_VERIFICATION"):
        load_settings(base | {"PHR_EMAIL_VERIFICATION": "maybe"})
    with pytest.raises(SettingsError, match="SMTP_FROM"):
        load_settings(base | {"SMTP_FROM": "not an address"})
    with pytest.raises(SettingsError, match="SMTP_CA_FILE"):
        load_settings(base | {"SMTP_CA_FILE": str(tmp_path / "missing.pem")})


def test_the_smtp_password_never_shows_in_the_settings_repr(tmp_path):
    settings = load_settings(
        {"PHR_DATA_DIR": str(tmp_path), "SMTP_URL": "smtp://relay:hunter2@mail.example.org"}
    )
    assert settings.smtp_url == "smtp://relay:hunter2@mail.example.org"
    assert "hunter2" not in repr(settings)
