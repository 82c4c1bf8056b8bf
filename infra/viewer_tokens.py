"""Study-scoped, short-lived tokens for viewers that cannot send an
Authorization header (an <img> tag, an external viewer given a DICOMweb base
URL). The token travels in the URL path and grants `imaging.read` on one study
of one patient until it expires; it is an HMAC over (patient, study, expiry)
with a key derived from the secrets key, so nothing is stored per token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from uuid import UUID

import msgspec

from domain.errors import AuthenticationFailed
from domain.imaging.store import ViewerGrant

_MAC_BYTES = 20


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ViewerTokens:
    def __init__(self, key: bytes, ttl_seconds: int):
        self._key = key
        self.ttl_seconds = ttl_seconds

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def mint(self, patient_id: UUID, study_uid: str, now: datetime) -> str:
        return self.seal(
            ViewerGrant(patient_id, study_uid, int(now.timestamp()) + self.ttl_seconds)
        )

    def seal(self, grant: ViewerGrant) -> str:
        body = msgspec.json.encode(grant)
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def session(self, link: ViewerGrant, recipient: str, now: datetime) -> ViewerGrant:
        expires = min(link.expires, int(now.timestamp()) + self.ttl_seconds)
        return msgspec.structs.replace(link, expires=expires, recipient=recipient)

    def verify(self, token: str, now: datetime) -> ViewerGrant:
        refused = AuthenticationFailed("The viewer link is not valid or has expired.")
        body_text, _, mac_text = token.partition(".")
        if len(token) > 1024 or not mac_text:
            raise refused
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            raise refused from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise refused
        try:
            grant = msgspec.json.decode(body, type=ViewerGrant)
        except msgspec.ValidationError:
            raise refused from None
        if now.timestamp() > grant.expires:
            raise refused
        return grant
