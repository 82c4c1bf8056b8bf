"""Ingesting a delivery: which incoming records are new, changed, unchanged
or stale, and storing them for one patient."""

from __future__ import annotations

import msgspec

from domain.access import Permit
from domain.fhir.bundle import ParsedEntry
from domain.fhir.index import IndexedFields
from domain.ports import AuditLog, RecordStore
from domain.records.record import CurrentVersion, IncomingRecord, IngestResult, incoming_from_entry
from domain.records.sources import RecordSource


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
