"""The patient's records: FHIR resources from every source, deduplicated by
(source, type, source id) with version history, read through the access policy."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from domain import fhir_json
from domain.access import Permit
from domain.audit import AuditLog
from domain.fhir import IndexedFields, ParsedEntry
from domain.imaging import ImagingRecord
from domain.sources import SELF, RecordSource, SourceKind

__all__ = ["SELF", "RecordSource", "SourceKind"]


class IncomingRecord(msgspec.Struct, frozen=True):
    """One resource as it arrives, ready to be stored."""

    resource_type: str
    source_resource_id: str
    fields: IndexedFields
    resource: dict
    is_supporting: bool
    # The canonical JSON, hashed and stored as these very bytes.
    resource_json: bytes
    content_hash: bytes
    # Chosen by the caller when the resource must name its own record (an
    # upload's content URL); otherwise the store assigns one.
    record_id: UUID | None = None


class CurrentVersion(msgspec.Struct, frozen=True):
    """What the store holds now for one (source, type, source id)."""

    record_id: UUID
    version: int
    content_hash: bytes
    source_version: str | None
    source_updated_at: datetime | None


class RecordVersion(msgspec.Struct, frozen=True):
    version: int
    received_at: datetime
    source_version: str | None
    source_updated_at: datetime | None
    resource: dict


class StoredRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    source: RecordSource
    source_resource_id: str
    fields: IndexedFields
    version: int
    resource: dict
    is_supporting: bool
    received_at: datetime
    updated_at: datetime


class RecordSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    resource_type: str
    category: str | None
    display: str | None
    value: str | None
    unit: str | None
    status: str | None
    effective_at: datetime | None
    sort_at: datetime
    source: RecordSource


class TimelineCursor(msgspec.Struct, frozen=True, array_like=True):
    sort_at: datetime
    id: UUID


class TimelineQuery(msgspec.Struct, frozen=True, kw_only=True):
    types: tuple[str, ...] = ()
    category: str | None = None
    hospital_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    after: TimelineCursor | None = None
    limit: int = 50


class IngestResult(msgspec.Struct, frozen=True):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    record_ids: tuple[UUID, ...] = ()


class RecordStore(Protocol):
    async def current_versions(
        self, permit: Permit, source: RecordSource, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], CurrentVersion]: ...

    async def insert(
        self, permit: Permit, source: RecordSource, records: list[IncomingRecord]
    ) -> list[UUID]: ...

    async def supersede(
        self, permit: Permit, updates: list[tuple[CurrentVersion, IncomingRecord]]
    ) -> None: ...

    async def get(self, permit: Permit, record_id: UUID) -> StoredRecord | None: ...

    async def history(self, permit: Permit, record_id: UUID) -> list[RecordVersion]: ...

    async def timeline(self, permit: Permit, query: TimelineQuery) -> list[RecordSummary]: ...

    async def of_types(self, permit: Permit, resource_types: list[str]) -> list[ImagingRecord]:
        """Every record of these types (supporting ones included), within scope."""
        ...

    def export_resources(self, permit: Permit) -> AsyncIterator[tuple[UUID, bytes]]:
        """(record id, the resource's JSON exactly as stored), one by one."""
        ...


def canonical_json(resource: dict) -> bytes:
    return fhir_json.encode_canonical(resource)


def content_hash(resource: dict) -> bytes:
    """Same content, same hash, whatever the key order it arrived in."""
    return hashlib.sha256(canonical_json(resource)).digest()


def incoming_record(
    resource: dict,
    fields: IndexedFields,
    *,
    source_resource_id: str,
    is_supporting: bool,
    record_id: UUID | None = None,
) -> IncomingRecord:
    """Encodes the resource once: the same bytes are hashed and stored."""
    canonical = canonical_json(resource)
    return IncomingRecord(
        resource_type=fields.resource_type,
        source_resource_id=source_resource_id,
        fields=fields,
        resource=resource,
        is_supporting=is_supporting,
        resource_json=canonical,
        content_hash=hashlib.sha256(canonical).digest(),
        record_id=record_id,
    )


def incoming_from_entry(entry: ParsedEntry, fallback_id: str) -> IncomingRecord:
    return incoming_record(
        entry.resource,
        entry.fields,
        source_resource_id=entry.fields.source_id or fallback_id,
        is_supporting=entry.is_supporting,
    )


def is_newer(incoming: IndexedFields, current: CurrentVersion) -> bool:
    """Does `incoming` supersede what is stored? The source's own ordering decides
    (meta.lastUpdated, else a numeric meta.versionId); with neither, the later
    arrival wins, which is all a source that sends no versions lets us know."""
    if incoming.last_updated is not None and current.source_updated_at is not None:
        if incoming.last_updated != current.source_updated_at:
            return incoming.last_updated > current.source_updated_at
    if (
        incoming.version_id is not None
        and current.source_version is not None
        and incoming.version_id.isdigit()
        and current.source_version.isdigit()
        and incoming.version_id != current.source_version
    ):
        return int(incoming.version_id) > int(current.source_version)
    return True


class IngestPlan(msgspec.Struct, frozen=True):
    inserts: list[IncomingRecord]
    updates: list[tuple[CurrentVersion, IncomingRecord]]
    unchanged: list[CurrentVersion]
    stale: list[CurrentVersion]


def plan_ingest(
    incoming: list[IncomingRecord], current: dict[tuple[str, str], CurrentVersion]
) -> IngestPlan:
    inserts: list[IncomingRecord] = []
    updates: list[tuple[CurrentVersion, IncomingRecord]] = []
    unchanged: list[CurrentVersion] = []
    stale: list[CurrentVersion] = []
    for record in incoming:
        existing = current.get((record.resource_type, record.source_resource_id))
        if existing is None:
            inserts.append(record)
        elif existing.content_hash == record.content_hash:
            unchanged.append(existing)
        elif is_newer(record.fields, existing):
            updates.append((existing, record))
        else:
            stale.append(existing)
    return IngestPlan(inserts, updates, unchanged, stale)


async def ingest(
    permit: Permit,
    source: RecordSource,
    entries: list[ParsedEntry],
    *,
    records: RecordStore,
    audit: AuditLog,
    fallback_ids: list[str] | None = None,
) -> IngestResult:
    """Store a validated delivery for the permit's patient. Runs inside the
    caller's unit of work: the whole delivery and its audit row commit together."""
    fallback_ids = fallback_ids or [f"entry-{entry.index}" for entry in entries]
    incoming = [incoming_from_entry(e, fid) for e, fid in zip(entries, fallback_ids, strict=True)]
    keys = [(r.resource_type, r.source_resource_id) for r in incoming]
    current = await records.current_versions(permit, source, keys)
    plan = plan_ingest(incoming, current)
    created_ids = await records.insert(permit, source, plan.inserts) if plan.inserts else []
    if plan.updates:
        await records.supersede(permit, plan.updates)
    touched = [*created_ids, *(existing.record_id for existing, _ in plan.updates)]
    await audit.append(permit.event("Bundle", *(str(i) for i in touched)))
    return IngestResult(
        created=len(plan.inserts),
        updated=len(plan.updates),
        unchanged=len(plan.unchanged),
        stale=len(plan.stale),
        record_ids=tuple(touched),
    )
