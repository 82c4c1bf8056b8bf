"""The patient's imaging list: every ImagingStudy record (a hospital's, with its
Endpoint links; the patient's own, with what phr stores of it: series, previews)
in one access decision and one audit event."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from domain.access import Actor, authorize_audited
from domain.audit.events import RequestContext
from domain.consents.consent import Consent
from domain.imaging_ports import ImagingStore
from domain.imaging_store import StoredStudy
from domain.ports import AuditLog, Clock, RecordStore, UnitOfWork
from domain.records.imaging import ImagingStudyView, study_views


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
            permit = await authorize_audited(
                uow,
                self._audit,
                actor,
                "imaging.list",
                patient_id,
                now=self._clock.now(),
                consent=consent,
                context=context,
            )
            rows = await self._records.of_types(permit, ["ImagingStudy", "Endpoint"])
            views = study_views(rows)
            stored = {s.study_uid: s for s in await self._store.studies(permit)}
            await self._audit.append(
                permit.event("ImagingStudy", *(str(v.record_id) for v in views))
            )
            await uow.commit()
        return views, stored
