"""Push settings from the environment. Web Push is always on (its VAPID keys are
made on first start); APNs and FCM are on when their credentials are set."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from domain.notifications.devices import OriginPattern
from infra.settings import SettingsError


class ApnsSettings(msgspec.Struct, frozen=True):
    key_file: Path  # the .p8 (ES256) key from Apple
    key_id: str
    team_id: str
    topic: str  # the app's bundle id
    url: str = "https://api.push.apple.com"
    # PEM certificates to trust for `url` instead of the system's (a private
    # gateway, or the tests' local APNs with a CA of their own).
    ca_file: Path | None = None


class FcmSettings(msgspec.Struct, frozen=True):
    service_account_file: Path
    url: str = "https://fcm.googleapis.com"


class PushSettings(msgspec.Struct, frozen=True):
    vapid_subject: str
    webpush_allow: tuple[OriginPattern, ...] = ()
    apns: ApnsSettings | None = None
    fcm: FcmSettings | None = None
    # How long a claimed delivery is this worker's before another may take it.
    lease_seconds: float = 60.0
    max_attempts: int = 8
    retry_base_seconds: float = 30.0

    @property
    def configured(self) -> frozenset[str]:
        return frozenset(
            {"webpush"} | ({"apns"} if self.apns else set()) | ({"fcm"} if self.fcm else set())
        )


def load_push_settings(public_url: str, env: Mapping[str, str] | None = None) -> PushSettings:
    env = os.environ if env is None else env
    allow: list[OriginPattern] = []
    for item in (env.get("PHR_WEBPUSH_ENDPOINT_ALLOW") or "").split(","):
        if item.strip():
            try:
                allow.append(OriginPattern.parse(item.strip()))
            except ValueError as error:
                raise SettingsError(f"PHR_WEBPUSH_ENDPOINT_ALLOW: {error}") from None
    apns = None
    if env.get("PHR_APNS_KEY_FILE"):
        missing = [
            n for n in ("PHR_APNS_KEY_ID", "PHR_APNS_TEAM_ID", "PHR_APNS_TOPIC") if not env.get(n)
        ]
        if missing:
            raise SettingsError(f"PHR_APNS_KEY_FILE is set but {', '.join(missing)} is not")
        url = (env.get("PHR_APNS_URL") or "https://api.push.apple.com").rstrip("/")
        if not url.startswith("https://"):
            raise SettingsError("PHR_APNS_URL must be an https: URL (APNs is HTTP/2 over TLS)")
        ca_file = env.get("PHR_APNS_CA_FILE") or None
        if ca_file and not Path(ca_file).is_file():
            raise SettingsError(f"PHR_APNS_CA_FILE: no such file {ca_file!r}")
        apns = ApnsSettings(
            key_file=Path(env["PHR_APNS_KEY_FILE"]),
            key_id=env["PHR_APNS_KEY_ID"],
            team_id=env["PHR_APNS_TEAM_ID"],
            topic=env["PHR_APNS_TOPIC"],
            url=url,
            ca_file=Path(ca_file) if ca_file else None,
        )
    fcm = None
    if env.get("PHR_FCM_SERVICE_ACCOUNT_FILE"):
        fcm = FcmSettings(
            service_account_file=Path(env["PHR_FCM_SERVICE_ACCOUNT_FILE"]),
            url=(env.get("PHR_FCM_URL") or "https://fcm.googleapis.com").rstrip("/"),
        )
    return PushSettings(
        vapid_subject=_vapid_subject(env.get("PHR_VAPID_SUBJECT"), public_url),
        webpush_allow=tuple(allow),
        apns=apns,
        fcm=fcm,
        lease_seconds=_number(env, "PHR_PUSH_LEASE_SECONDS", 60.0),
        max_attempts=int(_number(env, "PHR_PUSH_MAX_ATTEMPTS", 8)),
        retry_base_seconds=_number(env, "PHR_PUSH_RETRY_BASE_SECONDS", 30.0),
    )


def _vapid_subject(configured: str | None, public_url: str) -> str:
    """Whom push services contact about our pushes: an https URL or a mailto:
    (RFC 8292); by default the public URL when it is https."""
    subject = configured or (
        public_url
        if public_url.startswith("https://")
        else f"mailto:push@{urlsplit(public_url).hostname}"
    )
    if not subject.startswith(("https://", "mailto:")):
        raise SettingsError("PHR_VAPID_SUBJECT must be an https: URL or a mailto: address")
    return subject


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero, got {raw!r}")
    return value
