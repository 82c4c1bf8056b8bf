"""Account rules without I/O: mailed codes, mail texts, profile values, device names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.accounts.codes import (
    CODE_ATTEMPTS,
    CROCKFORD_ALPHABET,
    StoredCode,
    code_digest,
    code_matches,
    format_code,
    new_code,
    normalise_code,
)
from domain.accounts.mail_texts import KINDS, account_mail
from domain.accounts.profile_rules import (
    locale_from_accept_language,
    validated_locale,
    validated_time_zone,
)
from domain.accounts.sessions import device_name_from, validated_device_name
from domain.errors import InvalidInput

KEY = b"k" * 32


def test_codes_are_eight_crockford_characters_and_vary():
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and set(c) <= set(CROCKFORD_ALPHABET) for c in codes)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ABCD-EFGH", "ABCDEFGH"),
        ("abcd efgh", "ABCDEFGH"),
        (" 0ILO-1234 ", "0110" + "1234"),
        ("ABCD-EFG", None),
        ("ABCD-EFGU", None),  # U is not in the alphabet
        ("", None),
    ],
)
def test_codes_are_read_as_a_person_types_them(typed, expected):
    assert normalise_code(typed) == expected


def test_a_digest_is_bound_to_account_and_purpose():
    patient = uuid4()
    code = new_code()
    digest = code_digest(KEY, patient, "verify-email", code)
    assert digest != code_digest(KEY, patient, "password-reset", code)
    assert digest != code_digest(KEY, uuid4(), "verify-email", code)
    assert digest != code_digest(b"x" * 32, patient, "verify-email", code)
    assert code.encode() not in digest


def _stored(code: str, **changes) -> StoredCode:
    patient = uuid4()
    fields = {
        "patient_id": patient,
        "purpose": "verify-email",
        "digest": code_digest(KEY, patient, "verify-email", code),
        "new_email": None,
        "expires_at": datetime.now(UTC) + timedelta(minutes=30),
        "attempts": 0,
        "used_at": None,
    }
    return StoredCode(**(fields | changes))


def test_code_matching_and_usability():
    code = new_code()
    stored = _stored(code)
    now = datetime.now(UTC)
    assert code_matches(stored, KEY, normalise_code(format_code(code).lower()))
    assert not code_matches(stored, KEY, None)
    assert not code_matches(stored, KEY, "0" * 8 if code != "0" * 8 else "1" * 8)
    assert stored.usable_at(now)
    assert not stored.usable_at(now + timedelta(minutes=31))
    assert not _stored(code, attempts=CODE_ATTEMPTS).usable_at(now)
    assert not _stored(code, used_at=now).usable_at(now)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_mail_has_text_and_html_and_a_code_in_the_subject_when_it_carries_one(kind, locale):
    message = account_mail(kind, to="a@example.org", locale=locale, code="ABCD-EFGH", minutes=30)
    assert message.text and message.html.startswith("<!DOCTYPE html>")
    if kind in ("verify-email", "password-reset", "email-change"):
        assert "ABCD-EFGH" in message.subject and "ABCD-EFGH" in message.text
    else:
        assert "ABCD-EFGH" not in message.subject + message.text
    assert f'lang="{locale}"' in message.html


def test_html_escapes_what_it_shows():
    message = account_mail("verify-email", to="a@example.org", locale="en", code="<b>&", minutes=1)
    assert "<b>&" not in message.html and "&lt;b&gt;&amp;" in message.html


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,zh;q=0.5", "zh-CN"),
        ("en;q=0.2,zh;q=0.8", "zh-CN"),
        ("zh-TW", "en"),
        ("de", "en"),
        ("garbage;q=x", "en"),
    ],
)
def test_locale_follows_accept_language(header, locale):
    assert locale_from_accept_language(header) == locale


def test_profile_values_are_validated_naming_the_field():
    assert validated_locale("zh-CN") == "zh-CN"
    assert validated_time_zone("Asia/Shanghai") == "Asia/Shanghai"
    for bad in ("Mars/Base", "../etc/passwd", "", "asia/shanghai"):
        with pytest.raises(InvalidInput) as refused:
            validated_time_zone(bad)
        assert refused.value.errors[0].field == "timeZone"
    with pytest.raises(InvalidInput) as refused:
        validated_locale("fr")
    assert refused.value.errors[0].field == "locale"


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("phr-ios/2.3.1 (iPhone; iOS 17.5)", "phr-ios on iPhone"),
        ("curl/8.5.0", "curl"),
        (None, None),
        ("", None),
    ],
)
def test_device_names_from_user_agents(agent, name):
    assert device_name_from(agent) == name


def test_a_given_device_name_is_cleaned():
    assert validated_device_name("  Grandma's\u0000 tablet\u202e ") == "Grandma's tablet"
    assert validated_device_name("x" * 500) == "x" * 200
    assert validated_device_name("   ") is None
