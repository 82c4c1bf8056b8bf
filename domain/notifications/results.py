"""New results notify: told of each hospital delivery as it is stored, in the
delivery's own transaction, so the coalesced notification commits with it."""

from __future__ import annotations

import hashlib

from domain.access import Permit
from domain.fhir.bundle import ParsedEntry
from domain.notifications.notifier import Notifier
from domain.ports import HospitalStore
from domain.records.record import IngestResult, canonical_json
from domain.records.sources import RecordSource


class ResultsNotifier:
    """After an ingest: one notification for the final results the delivery
    created or changed (not the ones it repeated unchanged)."""

    def __init__(self, notifier: Notifier, hospitals: HospitalStore):
        self._notifier = notifier
        self._hospitals = hospitals

    async def __call__(
        self,
        permit: Permit,
        source: RecordSource,
        entries: list[ParsedEntry],
        result: IngestResult,
    ) -> None:
        if not result.record_ids or source.hospital_id is None:
            return
        resources = {
            (e.fields.resource_type, e.fields.source_id or f"entry-{e.index}"): e.resource
            for e in entries
        }
        # The occurrence is this content from this hospital: the same results
        # stored again tell nothing new, a changed version does.
        digest = hashlib.sha256()
        for key in sorted(resources):
            digest.update(canonical_json(resources[key]))
        hospital = await self._hospitals.get(source.hospital_id)
        await self._notifier.results_delivered(
            permit,
            source.hospital_id,
            hospital.name if hospital else "",
            list(result.record_ids),
            resources,
            digest.hexdigest()[:40],
        )
