"""The directory a patient's app searches; `linked` reads the patient's own links,
so the search runs under a permit and is audited like listing them."""

from __future__ import annotations

import time
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

# A hospital added to the directory is named within this long everywhere.
UNKNOWN_RETRY_SECONDS = 60.0
_UNKNOWN_KEPT = 10_000


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
        # Ids the directory does not hold (yet), with when to ask again: without
        # this, every record naming such a hospital costs a round trip per read.
        self._unknown: dict[UUID, float] = {}

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
        now = time.monotonic()
        missing = [i for i in wanted if i not in self._names and self._unknown.get(i, 0.0) <= now]
        if missing:
            found = await self._store.names(missing)
            self._names.update(found)
            if len(self._unknown) > _UNKNOWN_KEPT:
                self._unknown.clear()
            for i in missing:
                if i not in found:
                    self._unknown[i] = now + UNKNOWN_RETRY_SECONDS
        return {i: self._names[i] for i in wanted if i in self._names}
