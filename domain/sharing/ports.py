"""The ports the sharing use cases need (re-exported by domain.ports, where every
port is found). The share store takes a Permit like every store over a patient's
rows; tests/architecture/test_ports.py holds it to that."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.access import Permit
from domain.sharing.model import (
    NewShare,
    QrFormat,
    Share,
    ShareAccess,
    SharePageCursor,
    ThrottleRefusal,
)
from domain.sharing.scope import Candidate, ShareScope


class ShareStore(Protocol):
    async def create(self, permit: Permit, share: NewShare) -> Share:
        """Seals what must be kept (a long-term share's key, the link while it is
        held) before it reaches a row."""
        ...

    async def page(
        self, permit: Permit, after: SharePageCursor | None, limit: int
    ) -> list[Share]: ...

    async def get(self, permit: Permit, share_id: UUID) -> Share | None: ...

    async def with_held_link(
        self, permit: Permit, share_id: UUID, now: datetime
    ) -> tuple[Share, str | None] | None:
        """The share and its link while phr still holds it (a snapshot's for a
        short while after creation, a live long-term share's always)."""
        ...

    async def forget_links(self, now: datetime) -> int:
        """Erases every snapshot link whose holding time is over."""
        ...

    async def revoke(self, permit: Permit, share_id: UUID, now: datetime) -> Share | None:
        """Also forgets everything that could open the content again."""
        ...

    async def by_token(self, token_digest: bytes) -> Share | None:
        """How a doctor's request finds its share (and its patient)."""
        ...

    async def use_ticket(self, token_digest: bytes, now: datetime) -> tuple[Share, str] | None:
        """Spends a file `location` (once, before it expires): its share and the
        recipient it was issued to."""
        ...

    async def key(self, permit: Permit, share_id: UUID) -> bytes:
        """A long-term share's content key, unsealed."""
        ...

    async def reserve_attempt(self, permit: Permit, share_id: UUID) -> int | None:
        """Takes one passcode attempt in a statement of its own, committed at once;
        the attempts left after it, or None when there are none."""
        ...

    async def refund_attempt(self, permit: Permit, share_id: UUID) -> None: ...

    async def disable(self, permit: Permit, share_id: UUID, now: datetime) -> None: ...

    async def candidates(
        self, permit: Permit, scope: ShareScope, *, live_sources_only: bool
    ) -> list[Candidate]:
        """Records that may fall in the scope (the domain's `select` decides),
        within the permit's consent; `live_sources_only` drops records of
        hospitals whose link or data-source consent was revoked."""
        ...

    async def patient_resource(self, permit: Permit) -> dict[str, Any]: ...

    async def organizations(self, hospital_ids: list[UUID]) -> dict[UUID, str]:
        """Hospital names, for the Organizations in a shared bundle."""
        ...

    async def record_access(self, permit: Permit, share_id: UUID, access: ShareAccess) -> None: ...

    async def accesses(self, permit: Permit, share_id: UUID, limit: int) -> list[ShareAccess]: ...

    async def issue_ticket(
        self,
        permit: Permit,
        share_id: UUID,
        token_digest: bytes,
        recipient: str,
        expires_at: datetime,
    ) -> None: ...


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


class QrRenderer(Protocol):
    async def render(self, text: str, fmt: QrFormat) -> bytes:
        """A QR code (error correction M) of `text`, off the event loop."""
        ...


class ShareAccessListener(Protocol):
    """Told of every served look at a share, inside that access's transaction
    (the patient's notifications: first opening, each new recipient)."""

    async def __call__(
        self, access: Permit, share_id: UUID, label: str | None, recipient: str
    ) -> Any: ...
