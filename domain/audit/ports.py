"""The audit log's ports: kept beside the audit model (domain/ports.py would pass
~450 lines), imported there too, and walked by the same architecture tests."""

from __future__ import annotations

from typing import Protocol

from domain.access import Permit
from domain.audit.events import AuditEvent, RecordedAuditEvent
from domain.audit.leaves import PatientLeaf, StoredCheckpoint


class AuditLog(Protocol):
    """Appends inside the caller's unit of work: if the append fails, the whole
    use case fails with it (fail closed)."""

    async def append(self, event: AuditEvent) -> None: ...

    async def page(
        self, permit: Permit, before_id: int | None, limit: int
    ) -> list[RecordedAuditEvent]:
        """The permit's patient's history, newest first, ids below `before_id`."""
        ...


class TransparencyLogStore(Protocol):
    """The sealed audit log: checkpoints, stored tree nodes, the patient's leaves."""

    async def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    async def checkpoint(self, size: int) -> StoredCheckpoint | None: ...

    async def node_hashes(self, positions: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored perfect-subtree hashes by (level, index); absent ones are left out."""
        ...

    async def patient_leaves(
        self, permit: Permit, below_size: int, *, after_index: int, limit: int
    ) -> list[PatientLeaf]:
        """Up to `limit` of the permit's patient's leaves with an index between
        `after_index` and `below_size` (both excluded), oldest first."""
        ...

    async def leaf_count(self, from_index: int, below_size: int) -> int:
        """How many leaf rows have an index in [from_index, below_size)."""
        ...


class NoteSigner(Protocol):
    """The audit log's Ed25519 key (kept apart from the access-token keys); also
    verifies signatures, for checkpoints a caller hands back."""

    @property
    def name(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...
