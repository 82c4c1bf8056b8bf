"""The directory a patient's app searches; `linked` reads the patient's own links,
so the search runs under a permit and is audited like listing them."""

from __future__ import annotations

from uuid import UUID

from domain.access import PatientActor
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.hospitals.directory import (
    DirectoryCursor,
    DirectoryEntry,
    DirectoryQuery,
    validated_search_text,
)
from domain.ports import AuditLog, Clock, HospitalDirectoryStore, UnitOfWorkFactory


class HospitalDirectory:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        store: HospitalDirectoryStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._store = store
        self._audit = audit
        self._clock = clock
        # Hospitals are added, never renamed or removed: a name once read stays true.
        self._names: dict[UUID, str] = {}

    async def search(
        self,
        patient: PatientActor,
        *,
        text: str | None,
        after: DirectoryCursor | None,
        limit: int,
        context: RequestContext,
    ) -> list[DirectoryEntry]:
        """Returns up to `limit + 1` entries: one more than a page says there is
        a next page."""
        query = DirectoryQuery(text=validated_search_text(text), after=after, limit=limit + 1)
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                patient,
                "link.list",
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            entries = await self._store.search(permit, query)
            await self._audit.append(permit.event("Organization", *(str(e.id) for e in entries)))
            await uow.commit()
        return entries

    async def names(self, hospital_ids: list[UUID | None]) -> dict[UUID, str]:
        """Names for the ids (None ignored), to show beside every hospital id the
        API returns. Public directory data: no permit needed."""
        wanted = {i for i in hospital_ids if i is not None}
        missing = [i for i in wanted if i not in self._names]
        if missing:
            self._names.update(await self._store.names(missing))
        return {i: self._names[i] for i in wanted if i in self._names}
