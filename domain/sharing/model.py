"""A share as stored, and what a doctor's access leaves behind. The ports the
sharing use cases need are in domain/ports.py with the others."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from domain.sharing.scope import ShareScope

ShareStatus = Literal["active", "expired", "revoked", "disabled"]
QrFormat = Literal["png", "svg"]


class Share(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    consent_id: UUID
    label: str | None
    flag: str
    scope: ShareScope
    long_term: bool
    passcode_hash: str | None
    attempts_left: int
    record_ids: tuple[UUID, ...]
    ciphertext_key: str | None
    ciphertext_bytes: int | None
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None
    disabled_at: datetime | None

    def status_at(self, now: datetime) -> ShareStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.disabled_at is not None:
            return "disabled"
        if now >= self.expires_at:
            return "expired"
        return "active"


class NewShare(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    consent_id: UUID
    token_digest: bytes
    label: str | None
    flag: str
    scope: ShareScope
    passcode_hash: str | None
    attempts_left: int
    long_term: bool
    # Sealed by the store: the key only for long-term shares; the link (which
    # holds the key) until `link_held_until`.
    key: bytes | None
    link: str
    link_held_until: datetime | None
    record_ids: tuple[UUID, ...]
    ciphertext_key: str | None
    ciphertext_bytes: int | None
    expires_at: datetime
    created_at: datetime


class ShareAccess(msgspec.Struct, frozen=True, kw_only=True):
    # viewer: the imaging viewer the shared bundle links to, opened by its recipient.
    kind: Literal["manifest", "file", "viewer"]
    recipient: str
    client_address: str | None
    user_agent: str | None
    files: int
    accessed_at: datetime


class SharePageCursor(msgspec.Struct, frozen=True, array_like=True):
    created_at: datetime
    id: UUID


class ThrottleRefusal(msgspec.Struct, frozen=True):
    retry_after_seconds: int
    limit: int
    window_seconds: int
