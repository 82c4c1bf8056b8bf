"""The SMART Health Link itself: `shlink:/` + base64url(minified JSON payload).

The payload carries the manifest url (random, >= 256 bits, <= 128 characters) and
the 32-byte content key; the viewer URL puts it after `#`, so the key never
reaches any server's log. The manifest token is not the share id and is no
bearer token anywhere: only its digest is stored."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

import msgspec

SHLINK_PREFIX = "shlink:/"
KEY_BYTES = 32
TOKEN_BYTES = 32  # 256 bits of entropy in the manifest url
MAX_URL_LENGTH = 128
MAX_LABEL_LENGTH = 80


class ShlPayload(msgspec.Struct, frozen=True):
    """A link payload as read (ours or another issuer's)."""

    url: str
    key: str
    exp: int | None = None
    flag: str | None = None
    label: str | None = None
    v: int = 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_token() -> str:
    return b64url(secrets.token_bytes(TOKEN_BYTES))


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def flags(*, long_term: bool, passcode: bool) -> str:
    """Flags in alphabetical order, as the spec wants them."""
    return ("L" if long_term else "") + ("P" if passcode else "")


def manifest_url(public_url: str, token: str) -> str:
    url = f"{public_url.rstrip('/')}/shl/{token}"
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"PHR_PUBLIC_URL is too long for a SMART Health Link ({len(url)} > 128)")
    return url


def encode_shlink(
    *, url: str, key: bytes, expires_at: datetime, flag: str, label: str | None
) -> str:
    payload: dict[str, object] = {
        "url": url,
        "key": b64url(key),
        "exp": int(expires_at.timestamp()),
    }
    if flag:
        payload["flag"] = flag
    if label:
        payload["label"] = label
    payload["v"] = 1
    return SHLINK_PREFIX + b64url(msgspec.json.encode(payload))


def decode_shlink(text: str) -> ShlPayload:
    """Reads `shlink:/...` with or without a viewer prefix (`...#shlink:/...`).
    Tolerates `exp` given as a string of milliseconds, as one IG example does."""
    _, _, tail = text.rpartition("#") if "#" in text else ("", "", text)
    if not tail.startswith(SHLINK_PREFIX):
        raise ValueError("not a SMART Health Link")
    raw = msgspec.json.decode(b64url_decode(tail[len(SHLINK_PREFIX) :]))
    if not isinstance(raw, dict):
        raise ValueError("the link payload is not a JSON object")
    exp = raw.get("exp")
    if isinstance(exp, str) and exp.isdigit():
        raw["exp"] = int(exp) // 1000 if len(exp) > 11 else int(exp)
    return msgspec.convert(raw, ShlPayload)


def viewer_url(public_url: str, shlink: str) -> str:
    return f"{public_url.rstrip('/')}/viewer#{shlink}"
