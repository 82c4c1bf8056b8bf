"""Use cases on a patient's record: read, list, add, export. Each runs in one
unit of work that holds the access decision's audit row, allowed or refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

from domain.access import (
    Action,
    Actor,
    Permit,
)
from domain.audit.events import RequestContext
from domain.audited_access import account_gone, authorize_audited, authorize_read
from domain.consents.consent import Consent
from domain.errors import FieldProblem, InvalidInput, NotFound
from domain.fhir.bundle import ParsedEntry
from domain.fhir.elements import PATIENT_REPORTABLE_TYPES, unknown_elements
from domain.fhir.validation import EntryProblem, InvalidFhir, validate_resource
from domain.ports import AuditLog, Clock, RecordStore, UnitOfWork
from domain.records.ingest import ingest
from domain.records.record import (
    IngestResult,
    RecordSummary,
    RecordVersion,
    StoredRecord,
    TimelineQuery,
)
from domain.records.self_reported import tag_self_reported
from domain.records.sources import SELF, RecordSource


class PatientRecords:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        records: RecordStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._records = records
        self._audit = audit
        self._clock = clock

    @asynccontextmanager
    async def _permitted(
        self,
        actor: Actor,
        action: Action,
        patient_id: UUID,
        context: RequestContext,
        consent: Consent | None,
    ) -> AsyncIterator[tuple[UnitOfWork, Permit]]:
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                actor,
                action,
                patient_id,
                now=self._clock.now(),
                consent=consent,
                context=context,
            )
            yield uow, permit

    async def _permit_for_read(
        self,
        actor: Actor,
        action: Action,
        patient_id: UUID,
        context: RequestContext,
        consent: Consent | None,
    ) -> Permit:
        return await authorize_read(
            self._unit_of_work,
            self._audit,
            actor,
            action,
            patient_id,
            now=self._clock.now(),
            context=context,
            consent=consent,
        )

    async def read(
        self,
        actor: Actor,
        patient_id: UUID,
        record_id: UUID,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> tuple[StoredRecord, list[RecordVersion]]:
        """The fetch, the account check and the audit row (success, or the refusal
        of a record that is not there) are one statement, committed before the
        record is returned."""
        permit = await self._permit_for_read(actor, "record.read", patient_id, context, consent)
        record, account_active = await self._records.get_audited(
            permit,
            record_id,
            found=permit.event(None, str(record_id)),
            missing=permit.refusal("not-found", None, str(record_id)),
        )
        if not account_active:
            raise account_gone(actor)
        if record is None:
            raise NotFound("No record with this id.")
        # A first version has no history: skip the round trip.
        history = await self._records.history(permit, record_id) if record.version > 1 else []
        return record, history

    async def timeline(
        self,
        actor: Actor,
        patient_id: UUID,
        query: TimelineQuery,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> list[RecordSummary]:
        permit = await self._permit_for_read(actor, "record.list", patient_id, context, consent)
        items, account_active = await self._records.timeline_audited(
            permit, query, permit.event(None)
        )
        if not account_active:
            raise account_gone(actor)
        return items

    async def add_self_reported(
        self, actor: Actor, patient_id: UUID, resource: dict[str, Any], *, context: RequestContext
    ) -> StoredRecord:
        """A record the patient entered (a home blood-pressure reading, say),
        tagged as self-reported so nobody mistakes it for a hospital's."""
        resource_type = resource.get("resourceType")
        if isinstance(resource_type, str) and resource_type not in PATIENT_REPORTABLE_TYPES:
            allowed = ", ".join(sorted(PATIENT_REPORTABLE_TYPES))
            raise InvalidInput(
                f"{resource_type} is not a record a patient can add; a patient may add: {allowed}.",
                errors=[FieldProblem("resourceType", f"must be one of {allowed}")],
            )
        # Validated before it is tagged: the tagging reads `meta`, so a malformed
        # `meta` must be refused (422 naming it) before anything walks it.
        resource = {**resource, "id": str(uuid4())}
        fields = validate_resource(resource)
        unknown = unknown_elements(resource)
        if unknown:
            # FHIR JSON has no room for extras (extensions carry them): a typo such
            # as valueQuantiy would otherwise be kept and never reach the timeline.
            raise InvalidFhir(
                [
                    EntryProblem(
                        None,
                        resource_type if isinstance(resource_type, str) else None,
                        path,
                        f"'{path}' is not an element of {resource_type} in FHIR R4; "
                        "extra data belongs in an extension",
                    )
                    for path in unknown
                ]
            )
        entry = ParsedEntry(
            index=0,
            full_url=None,
            resource=tag_self_reported(resource),
            fields=fields,
            is_supporting=False,
        )
        async with self._permitted(actor, "record.create", patient_id, context, None) as (
            uow,
            permit,
        ):
            result = await ingest(permit, SELF, [entry], records=self._records, audit=self._audit)
            record = await self._records.get(permit, result.record_ids[0])
            await uow.commit()
        assert record is not None
        return record

    async def ingest_delivery(
        self,
        actor: Actor,
        patient_id: UUID,
        source: RecordSource,
        entries: list[ParsedEntry],
        *,
        context: RequestContext,
        consent: Consent | None,
    ) -> IngestResult:
        """A whole delivery (one bundle) for one patient, all or nothing."""
        async with self._permitted(actor, "record.ingest", patient_id, context, consent) as (
            uow,
            permit,
        ):
            result = await ingest(permit, source, entries, records=self._records, audit=self._audit)
            await uow.commit()
            return result

    @asynccontextmanager
    async def export(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> AsyncIterator[AsyncIterator[tuple[UUID, bytes]]]:
        """Opens an export: the audit row is written first, in the transaction the
        rows are then read from, so the export and its record commit together."""
        async with self._permitted(actor, "export.created", patient_id, context, consent) as (
            uow,
            permit,
        ):
            await self._audit.append(permit.event("Bundle"))
            yield self._records.export_resources(permit)
            await uow.commit()
