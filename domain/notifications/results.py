"""New results notify: the hospital push's ingest, wrapped so that the
coalesced notification is written in the delivery's own transaction."""

from __future__ import annotations

import hashlib
from uuid import UUID

from domain.access import HospitalActor
from domain.audit.events import RequestContext
from domain.consents.consent import Consent
from domain.fhir.bundle import ParsedEntry
from domain.notifications.notifier import Notifier
from domain.ports import DeliveryIngest, HospitalStore
from domain.records.record import IngestResult, canonical_json
from domain.records.sources import RecordSource


class ResultsNotifyingIngest:
    """Ingests as `inner` does, then tells the patient about the final results
    the delivery created or changed (not the ones it repeated unchanged)."""

    def __init__(self, inner: DeliveryIngest, notifier: Notifier, hospitals: HospitalStore):
        self._inner = inner
        self._notifier = notifier
        self._hospitals = hospitals

    async def ingest_delivery(
        self,
        actor: HospitalActor,
        patient_id: UUID,
        source: RecordSource,
        entries: list[ParsedEntry],
        *,
        context: RequestContext,
        consent: Consent | None,
    ) -> IngestResult:
        result = await self._inner.ingest_delivery(
            actor, patient_id, source, entries, context=context, consent=consent
        )
        if not result.record_ids or source.hospital_id is None:
            return result
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
            patient_id,
            source.hospital_id,
            hospital.name if hospital else "",
            list(result.record_ids),
            resources,
            digest.hexdigest()[:40],
        )
        return result
