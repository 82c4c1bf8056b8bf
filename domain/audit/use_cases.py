"""The patient's own access history, read through the policy like any other
part of their record: each look at it is itself a row in it. (Checking it against
the signed transparency log: domain/audit/trail.py.)"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from domain.access import PatientActor
from domain.audit.events import RecordedAuditEvent, RequestContext
from domain.audited_access import authorize_audited
from domain.ports import AuditLog, Clock, UnitOfWork

MAX_PAGE = 200


class AuditPage(msgspec.Struct, frozen=True):
    items: list[RecordedAuditEvent]
    # The id to pass as `before_id` for the next page; None on the last one.
    next_before_id: int | None


class AuditHistory:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], audit: AuditLog, clock: Clock):
        self._unit_of_work = unit_of_work
        self._audit = audit
        self._clock = clock

    async def page(
        self,
        patient: PatientActor,
        *,
        before_id: int | None,
        limit: int,
        context: RequestContext,
    ) -> AuditPage:
        """Newest first. The row recording this read is written after the page is
        read, so it shows on the next look, never on this one."""
        limit = max(1, min(limit, MAX_PAGE))
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                patient,
                "audit.list",
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            rows = await self._audit.page(permit, before_id, limit + 1)
            items = rows[:limit]
            await self._audit.append(permit.event("AuditEvent", *(str(r.id) for r in items)))
            await uow.commit()
        return AuditPage(items, items[-1].id if len(rows) > limit else None)
