"""In-memory fakes of the domain's ports, for use-case rules worth testing
without a database. Each fake passes the same contract tests as its PostgreSQL
adapter (tests/contract/), so a rule proven against the fake holds for real."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID, uuid4

import msgspec

from domain.access import Permit
from domain.audit.events import AuditEvent, RecordedAuditEvent
from domain.consents.consent import Consent, ConsentKind, ConsentScope


class FakeUnitOfWork:
    """Counts commits; like the real one, nothing is undone here on exit (the fakes
    keep no transactions), so tests assert on `commits`."""

    def __init__(self) -> None:
        self.commits = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1


class FakeAuditLog:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append(self, event: AuditEvent) -> None:
        self.events.append(event)

    async def page(
        self, permit: Permit, before_id: int | None, limit: int
    ) -> list[RecordedAuditEvent]:
        raise NotImplementedError("not needed by the rules tested with fakes")

    async def chain(self, permit: Permit) -> list[RecordedAuditEvent]:
        raise NotImplementedError("not needed by the rules tested with fakes")


class FakeConsentStore:
    def __init__(self) -> None:
        self._rows: dict[UUID, Consent] = {}

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
    ) -> Consent:
        consent = Consent(
            id=uuid4(),
            patient_id=permit.patient_id,
            kind=kind,
            grantee_type=grantee_type,  # type: ignore[arg-type]
            grantee_id=grantee_id,
            scope=scope,
            period_start=start,
            period_end=end,
            revoked_at=None,
            created_at=start,
        )
        self._rows[consent.id] = consent
        return consent

    def _own(self, permit: Permit, consent_id: UUID) -> Consent | None:
        consent = self._rows.get(consent_id)
        return consent if consent is not None and consent.patient_id == permit.patient_id else None

    async def get(self, permit: Permit, consent_id: UUID) -> Consent | None:
        return self._own(permit, consent_id)

    async def list(self, permit: Permit) -> list[Consent]:
        own = [c for c in self._rows.values() if c.patient_id == permit.patient_id]
        return sorted(own, key=lambda c: (c.created_at, c.id), reverse=True)

    async def remove_end(self, permit: Permit, consent_id: UUID) -> Consent | None:
        consent = self._own(permit, consent_id)
        if consent is None or consent.revoked_at is not None:
            return None
        self._rows[consent_id] = msgspec.structs.replace(consent, period_end=None)
        return self._rows[consent_id]

    async def revoke(self, permit: Permit, consent_id: UUID, at: datetime) -> Consent | None:
        consent = self._own(permit, consent_id)
        if consent is None or consent.revoked_at is not None:
            return None
        self._rows[consent_id] = msgspec.structs.replace(consent, revoked_at=at)
        return self._rows[consent_id]

    async def relied_on(self, consent_id: UUID) -> Consent | None:
        return self._rows.get(consent_id)
