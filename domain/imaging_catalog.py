"""The patient's imaging list: every ImagingStudy record (a hospital's, with its
Endpoint links; the patient's own, with what phr stores of it: series, previews)
in one access decision and one audit event."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from domain.access import AccessRefused, ActionNotAllowed, Actor, authorize
from domain.audit import AuditLog, RequestContext
from domain.clock import Clock
from domain.consent import Consent
from domain.imaging import ImagingStudyView, study_views
from domain.imaging_store import ImagingStore, StoredStudy
from domain.ports import UnitOfWork
from domain.records import RecordStore


class ImagingCatalog:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        records: RecordStore,
        store: ImagingStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._records = records
        self._store = store
        self._audit = audit
        self._clock = clock

    async def list(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> tuple[list[ImagingStudyView], dict[str, StoredStudy]]:
        """The study views, and the stored studies by StudyInstanceUID."""
        async with self._unit_of_work() as uow:
            try:
                permit = authorize(
                    actor,
                    "imaging.list",
                    patient_id,
                    now=self._clock.now(),
                    consent=consent,
                    context=context,
                )
            except (AccessRefused, ActionNotAllowed) as refused:
                await self._audit.append(refused.audit)
                await uow.commit()
                raise
            rows = await self._records.of_types(permit, ["ImagingStudy", "Endpoint"])
            views = study_views(rows)
            stored = {s.study_uid: s for s in await self._store.studies(permit)}
            await self._audit.append(
                permit.event("ImagingStudy", *(str(v.record_id) for v in views))
            )
            await uow.commit()
        return views, stored
