"""Signed-in devices. A session is a refresh-token family: it starts at sign-in,
moves on with every refresh, and ends on sign-out, on reuse of a spent token, when
the patient ends it from another device, or when the password changes. Access
tokens name their session (`sid`), and the token check refuses those of an ended
session at once."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from uuid import UUID

import msgspec

from domain.errors import NotFound

MAX_DEVICE_NAME_LENGTH = 200


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    device_name: str | None
    client_address: str | None
    created_at: datetime
    last_used_at: datetime


class SessionNotFound(NotFound):
    kind = "session-not-found"
    title = "No such session"


# Most specific first: an iPad's agent also says "Mac OS X", Android's says "Linux".
_PLATFORMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("Macintosh", "Mac"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_APP = re.compile(r"^([A-Za-z][\w.\- ]{0,40})/[\w.]+")


def device_name_from(user_agent: str | None) -> str | None:
    """A name a person recognises ("Firefox on Linux", "phr on iPhone"), or None."""
    if not user_agent:
        return None
    platform = next((name for token, name in _PLATFORMS if token in user_agent), None)
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    if browser is None and not user_agent.startswith("Mozilla/"):
        match = _APP.match(user_agent)
        browser = match.group(1) if match else None
    if browser and platform:
        return f"{browser} on {platform}"
    return browser or platform


def validated_device_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", raw.strip())
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    return name[:MAX_DEVICE_NAME_LENGTH] or None
