"""The patient's records: FHIR resources from every source, deduplicated by
(source, type, source id) with version history, read through the access policy."""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import UUID

import msgspec

from domain.fhir import json_codec
from domain.fhir.bundle import ParsedEntry
from domain.fhir.index import IndexedFields
from domain.records.sources import RecordSource


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
    received_at: datetime


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
    # The page size; a page read returns up to one more, the first of the next page.
    limit: int = 50


class IngestResult(msgspec.Struct, frozen=True):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    record_ids: tuple[UUID, ...] = ()
    # Elements FHIR R4 does not define, kept as received and reported to the
    # sender (e.g. bundle.entry[3].resource.valueQuantiy).
    unknown_elements: tuple[str, ...] = ()


def sort_at(fields: IndexedFields, received_at: datetime) -> datetime:
    """Where a record stands on the timeline: when it happened, or, for a record
    that does not say, when phr received it."""
    return fields.effective_at or received_at


def canonical_json(resource: dict) -> bytes:
    return json_codec.encode_canonical(resource)


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
