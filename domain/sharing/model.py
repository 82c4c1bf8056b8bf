"""A share as stored, what a doctor's access leaves behind, and the ports the
sharing use cases need."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

import msgspec

from domain.access import Permit
from domain.consents.consent import Consent, ConsentKind, ConsentScope
from domain.sharing.scope import Candidate, ShareScope

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
    kind: Literal["manifest", "file"]
    recipient: str
    client_address: str | None
    user_agent: str | None
    files: int
    accessed_at: datetime


class SharePageCursor(msgspec.Struct, frozen=True, array_like=True):
    created_at: datetime
    id: UUID


class ShareStore(Protocol):
    async def create(self, permit: Permit, share: NewShare) -> Share: ...

    async def page(
        self, permit: Permit, after: SharePageCursor | None, limit: int
    ) -> list[Share]: ...

    async def get(self, permit: Permit, share_id: UUID) -> Share | None: ...

    async def with_held_link(
        self, permit: Permit, share_id: UUID, now: datetime
    ) -> tuple[Share, str | None] | None:
        """The share and its link, while phr still holds it (always for a live
        long-term share)."""
        ...

    async def forget_links(self, now: datetime) -> int:
        """Erases every snapshot link whose holding time is over (any patient's:
        a sweep, it reads nothing)."""
        ...

    async def revoke(self, permit: Permit, share_id: UUID, now: datetime) -> Share | None: ...

    async def by_token(self, token_digest: bytes) -> Share | None:
        """How a doctor's request finds its share (and so its patient) in the
        first place; the policy then decides on the share's consent."""
        ...

    async def by_id(self, share_id: UUID) -> Share | None: ...

    async def disable(self, share_id: UUID, now: datetime) -> None: ...

    async def key(self, share: Share) -> bytes:
        """A long-term share's content key, unsealed."""
        ...

    async def reserve_attempt(self, share_id: UUID, now: datetime) -> int | None:
        """Takes one passcode attempt (committed at once); the attempts left after
        it, or None when there are none (the link is disabled)."""
        ...

    async def refund_attempt(self, share_id: UUID) -> None: ...

    async def candidates(
        self, permit: Permit, scope: ShareScope, *, live_sources_only: bool
    ) -> list[Candidate]:
        """Records that may fall in the scope (the domain has the last word), the
        permit's patient only; `live_sources_only` drops records of hospitals
        whose link or data-source consent was revoked."""
        ...

    async def patient_resource(self, permit: Permit) -> dict: ...

    async def organizations(self, hospital_ids: list[UUID]) -> dict[UUID, str]: ...

    async def record_access(self, share_id: UUID, access: ShareAccess) -> None: ...

    async def accesses(self, permit: Permit, share_id: UUID, limit: int) -> list[ShareAccess]: ...

    async def issue_ticket(
        self, share_id: UUID, token_digest: bytes, recipient: str, expires_at: datetime
    ) -> None: ...

    async def use_ticket(self, token_digest: bytes, now: datetime) -> tuple[UUID, str] | None:
        """Spends a file ticket: (share id, recipient) once, before it expires."""
        ...


class ThrottleRefusal(msgspec.Struct, frozen=True):
    retry_after_seconds: int
    limit: int
    window_seconds: int


class RequestThrottle(Protocol):
    async def admit(self, subjects: list[str], now: datetime) -> ThrottleRefusal | None:
        """Counts a request against each subject (`link:...`, `address:...`);
        None if admitted."""
        ...


class ContentCipher(Protocol):
    async def encrypt(self, plaintext: bytes, key: bytes) -> str:
        """JWE compact (alg dir, enc A256GCM, cty application/fhir+json), a fresh
        IV every time; off the event loop."""
        ...


class FileStore(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str) -> None: ...

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class QrRenderer(Protocol):
    async def render(self, text: str, fmt: QrFormat) -> bytes:
        """A QR code (error correction M) of `text`, off the event loop."""
        ...


class ShareConsents(Protocol):
    """The share's consent: made with it, revoked with it, checked on every use."""

    async def create(
        self,
        permit: Permit,
        *,
        kind: ConsentKind,
        grantee_type: str,
        grantee_id: str,
        scope: ConsentScope,
        start: datetime,
        end: datetime | None,
    ) -> Consent: ...

    async def revoke(self, permit: Permit, consent_id: UUID, at: datetime) -> Consent | None: ...

    async def relied_on(self, consent_id: UUID) -> Consent | None:
        """The consent a share recipient presents, read so the policy can check it."""
        ...
