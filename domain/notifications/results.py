"""New results notify: the hospital push's ingest, wrapped so that the
coalesced notification is written in the delivery's own transaction."""

from __future__ import annotations

import hashlib
from typing import Protocol
from uuid import UUID

from domain.access import HospitalActor
from domain.audit.events import RequestContext
from domain.consents.consent import Consent
from domain.fhir.bundle import ParsedEntry
from domain.notifications.notifier import Notifier
from domain.notifications.ports import HospitalNames
from domain.records.record import IngestResult, canonical_json
from domain.records.sources import RecordSource


class DeliveryIngest(Protocol):
    async def ingest_delivery(
        self,
        actor: HospitalActor,
        patient_id: UUID,
        source: RecordSource,
        entries: list[ParsedEntry],
        *,
        context: RequestContext,
        consent: Consent | None,
    ) -> IngestResult: ...


class TouchedRecords(Protocol):
    async def keys(self, patient_id: UUID, record_ids: list[UUID]) -> set[tuple[str, str]]:
        """(resource type, source id) of these records: which entries were stored."""
        ...


class ResultsNotifyingIngest:
    """Ingests as `inner` does, then tells the patient about the final results
    the delivery created or changed (not the ones it repeated unchanged)."""

    def __init__(
        self,
        inner: DeliveryIngest,
        notifier: Notifier,
        hospitals: HospitalNames,
        touched: TouchedRecords,
    ):
        self._inner = inner
        self._notifier = notifier
        self._hospitals = hospitals
        self._touched = touched

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
        keys = await self._touched.keys(patient_id, list(result.record_ids))
        stored = [
            e
            for e in entries
            if (e.fields.resource_type, e.fields.source_id or f"entry-{e.index}") in keys
        ]
        # The occurrence is this content from this hospital: the same results
        # stored again tell nothing new, a changed version does.
        digest = hashlib.sha256()
        for entry in sorted(
            stored, key=lambda e: (e.fields.resource_type, e.fields.source_id or "")
        ):
            digest.update(canonical_json(entry.resource))
        name = await self._hospitals.name(source.hospital_id) or ""
        await self._notifier.results_delivered(
            patient_id,
            source.hospital_id,
            name,
            digest.hexdigest()[:40],
            (e.resource for e in stored),
        )
        return result
