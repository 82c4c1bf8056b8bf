"""The record store in PostgreSQL. Every query is bounded by the permit's patient
and, for share recipients, by the permit's scope of resource types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg

from domain.access import PatientActor, Permit
from domain.audit.events import AuditEvent
from domain.fhir.index import IndexedFields
from domain.ports import Clock
from domain.records.imaging import ImagingRecord
from domain.records.record import (
    CurrentVersion,
    IncomingRecord,
    RecordSummary,
    RecordVersion,
    StoredRecord,
    TimelineQuery,
    sort_at,
)
from domain.records.sources import RecordSource
from infra.pg.audited_read import audit_args, audited_statement
from infra.pg.database import Database, PreEncodedJson


def _scope(permit: Permit) -> list[str]:
    return list(permit.scope.resource_types)


def _session(permit: Permit) -> UUID | None:
    """The session an audited read checks is live (None: the account)."""
    return permit.actor.session_id if isinstance(permit.actor, PatientActor) else None


def _source(row: asyncpg.Record) -> RecordSource:
    return RecordSource(kind=row["source_kind"], hospital_id=row["hospital_id"])


class PgRecordStore:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    # One index lookup per key (LATERAL): a join against the unnested keys lets
    # the planner scan every record of the patient per key once stats are stale.
    _CURRENT = """
        SELECT r.id, r.resource_type, r.source_resource_id, r.version, r.content_hash,
               r.source_version, r.source_updated_at, r.received_at
        FROM unnest($3::text[], $4::text[]) AS k (resource_type, source_resource_id)
        CROSS JOIN LATERAL (
            SELECT id, resource_type, source_resource_id, version, content_hash,
                   source_version, source_updated_at, received_at
            FROM record
            WHERE patient_id = $1 AND source_key = $2
              AND resource_type = k.resource_type AND source_resource_id = k.source_resource_id
            FOR UPDATE
        ) AS r
    """

    async def current_versions(
        self, permit: Permit, source: RecordSource, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], CurrentVersion]:
        if not keys:
            return {}
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._CURRENT,
                permit.patient_id,
                source.key,
                [k[0] for k in keys],
                [k[1] for k in keys],
            )
        return {
            (row["resource_type"], row["source_resource_id"]): CurrentVersion(
                record_id=row["id"],
                version=row["version"],
                content_hash=bytes(row["content_hash"]),
                source_version=row["source_version"],
                source_updated_at=row["source_updated_at"],
                received_at=row["received_at"],
            )
            for row in rows
        }

    # A delivery goes in by COPY: a thousand entries are one stream, at the speed
    # of a raw COPY. Ids are chosen here (or by the caller, for uploads).
    _COPY_COLUMNS = (
        "id", "patient_id", "source_kind", "source_key", "hospital_id", "resource_type",
        "source_resource_id", "is_supporting", "category", "code_system", "code", "display",
        "effective_at", "status", "value", "unit", "sort_at", "version", "source_version",
        "source_updated_at", "content_hash", "resource", "received_at", "updated_at",
    )  # fmt: skip

    async def insert(
        self, permit: Permit, source: RecordSource, records: list[IncomingRecord]
    ) -> list[UUID]:
        now = self._clock.now()
        ids = [r.record_id or uuid4() for r in records]
        rows = [
            (
                record_id,
                permit.patient_id,
                source.kind,
                source.key,
                source.hospital_id,
                r.resource_type,
                r.source_resource_id,
                r.is_supporting,
                r.fields.category,
                r.fields.code_system,
                r.fields.code,
                r.fields.display,
                r.fields.effective_at,
                r.fields.status,
                r.fields.value,
                r.fields.unit,
                sort_at(r.fields, now),
                1,
                r.fields.version_id,
                r.fields.last_updated,
                r.content_hash,
                PreEncodedJson(r.resource_json),
                now,
                now,
            )
            for record_id, r in zip(ids, records, strict=True)
        ]
        async with self._database.transaction() as conn:
            await conn.copy_records_to_table("record", records=rows, columns=self._COPY_COLUMNS)
        return ids

    _ARCHIVE = """
        INSERT INTO record_version (patient_id, record_id, version, source_version, source_updated_at,
                                    content_hash, resource, received_at, superseded_at)
        SELECT patient_id, id, version, source_version, source_updated_at, content_hash, resource,
               updated_at, $3
        FROM record
        WHERE patient_id = $1 AND id = ANY($2::uuid[])
    """
    _UPDATE = """
        UPDATE record r SET
            category = t.category, code_system = t.code_system, code = t.code,
            display = t.display, effective_at = t.effective_at, status = t.status,
            value = t.value, unit = t.unit, sort_at = t.sort_at,
            version = r.version + 1, source_version = t.source_version,
            source_updated_at = t.source_updated_at, content_hash = t.content_hash,
            resource = t.resource::jsonb, updated_at = $2
        FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[],
                    $13::timestamptz[], $14::bytea[], $15::text[], $16::timestamptz[])
             AS t (id, category, code_system, code, display, effective_at, status, value, unit,
                   source_version, source_updated_at, content_hash, resource, sort_at)
        WHERE r.patient_id = $1 AND r.id = t.id
    """

    async def supersede(
        self, permit: Permit, updates: list[tuple[CurrentVersion, IncomingRecord]]
    ) -> None:
        now = self._clock.now()
        ids = [current.record_id for current, _ in updates]
        incoming = [record for _, record in updates]
        mutable = _mutable_columns(incoming)
        mutable.append([sort_at(record.fields, current.received_at) for current, record in updates])
        async with self._database.transaction() as conn:
            await conn.execute(self._ARCHIVE, permit.patient_id, ids, now)
            await conn.execute(self._UPDATE, permit.patient_id, now, ids, *mutable)

    _GET = """
        SELECT id, patient_id, source_kind, hospital_id, resource_type, source_resource_id,
               is_supporting, category, code_system, code, display, effective_at, status, value,
               unit, version, source_version, source_updated_at, resource, received_at, updated_at
        FROM record
        WHERE patient_id = $1 AND id = $2
          AND (cardinality($3::text[]) = 0 OR resource_type = ANY($3::text[]))
    """

    async def get(self, permit: Permit, record_id: UUID) -> StoredRecord | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, permit.patient_id, record_id, _scope(permit))
        return None if row is None else _stored_record(row)

    async def get_audited(
        self, permit: Permit, record_id: UUID, found: AuditEvent, missing: AuditEvent
    ) -> tuple[StoredRecord | None, bool]:
        """The record and its audit row in one statement; (record or None, whether
        the patient's account still exists; if not, nothing was written)."""
        sql = audited_statement(self._GET, 4, single=True)
        args = audit_args(found, missing, self._clock.now(), _session(permit))
        async with self._database.connection() as conn:
            rows = await conn.fetch(sql, permit.patient_id, record_id, _scope(permit), *args)
        row = rows[0]
        return (_stored_record(row) if row["id"] is not None else None), row["account_active"]

    _HISTORY = """
        SELECT version, received_at, source_version, source_updated_at, resource
        FROM record_version
        WHERE patient_id = $1 AND record_id = $2
        ORDER BY version DESC
    """

    async def history(self, permit: Permit, record_id: UUID) -> list[RecordVersion]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._HISTORY, permit.patient_id, record_id)
        return [
            RecordVersion(
                version=row["version"],
                received_at=row["received_at"],
                source_version=row["source_version"],
                source_updated_at=row["source_updated_at"],
                resource=row["resource"],
            )
            for row in rows
        ]

    # The timeline query is assembled from fixed fragments so that each request's
    # plan has only the conditions it uses, and the keyset condition can bound
    # the index scan (a generic plan with "$n IS NULL OR ..." cannot).
    _TIMELINE_SELECT = """
        SELECT id, resource_type, category, display, value, unit, status, effective_at, sort_at,
               source_kind, hospital_id
        FROM record
        WHERE patient_id = $1 AND NOT is_supporting
    """
    _TIMELINE_FILTERS = {
        "types": "resource_type = ANY(${}::text[])",
        "category": "category = ${}",
        "hospital_id": "hospital_id = ${}",
        "since": "sort_at >= ${}",
        "until": "sort_at < ${}",
        "text": "display ILIKE '%' || ${} || '%'",
    }

    def _timeline_sql(self, permit: Permit, query: TimelineQuery) -> tuple[str, list[object]]:
        sql = [self._TIMELINE_SELECT]
        args: list[object] = [permit.patient_id]

        def add(fragment: str, *values: object) -> None:
            placeholders = [f"${len(args) + i + 1}" for i in range(len(values))]
            sql.append("AND " + fragment.replace("${}", "{}").format(*placeholders))
            args.extend(values)

        if permit.scope.resource_types:
            add(self._TIMELINE_FILTERS["types"], list(permit.scope.resource_types))
        if query.types:
            add(self._TIMELINE_FILTERS["types"], list(query.types))
        if query.category is not None:
            add(self._TIMELINE_FILTERS["category"], query.category)
        if query.hospital_id is not None:
            add(self._TIMELINE_FILTERS["hospital_id"], query.hospital_id)
        if query.since is not None:
            add(self._TIMELINE_FILTERS["since"], query.since)
        if query.until is not None:
            add(self._TIMELINE_FILTERS["until"], query.until)
        if query.text:
            escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            add(self._TIMELINE_FILTERS["text"], escaped)
        if query.after is not None:
            add("(sort_at, id) < ({}, {})", query.after.sort_at, query.after.id)
        # One row past the page says whether a next page exists.
        sql.append(f"ORDER BY sort_at DESC, id DESC LIMIT ${len(args) + 1}")
        args.append(query.limit + 1)
        return "\n".join(sql), args

    async def timeline(self, permit: Permit, query: TimelineQuery) -> list[RecordSummary]:
        sql, args = self._timeline_sql(permit, query)
        async with self._database.transaction() as conn:
            rows = await conn.fetch(sql, *args)
        return [_summary(row) for row in rows]

    async def timeline_audited(
        self, permit: Permit, query: TimelineQuery, event: AuditEvent
    ) -> tuple[list[RecordSummary], bool]:
        """A timeline page (and the first row of the next, if any) and its audit row
        (listing the ids of the page's rows only) in one statement."""
        select, args = self._timeline_sql(permit, query)
        sql = audited_statement(
            select, len(args) + 1, single=False, order_by="sort_at DESC, id DESC"
        )
        audit = audit_args(
            event, event, self._clock.now(), _session(permit), listed_max=query.limit
        )
        async with self._database.connection() as conn:
            rows = await conn.fetch(sql, *args, *audit)
        return [_summary(row) for row in rows if row["id"] is not None], rows[0]["account_active"]

    _OF_TYPES = """
        SELECT id, source_kind, hospital_id, resource_type, source_resource_id, effective_at,
               resource, sort_at
        FROM record
        WHERE patient_id = $1 AND resource_type = ANY($2::text[])
          AND (cardinality($3::text[]) = 0 OR resource_type = ANY($3::text[]))
        ORDER BY sort_at DESC, id DESC
    """

    async def of_types(self, permit: Permit, resource_types: list[str]) -> list[ImagingRecord]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._OF_TYPES, permit.patient_id, resource_types, _scope(permit)
            )
        return [_imaging_record(row) for row in rows]

    async def of_types_audited(
        self, permit: Permit, resource_types: list[str], event: AuditEvent, listed_type: str
    ) -> tuple[list[ImagingRecord], bool]:
        """Records of these types and the audit row listing the ids of those of
        `listed_type`, in one statement."""
        sql = audited_statement(
            self._OF_TYPES,
            4,
            single=False,
            order_by="sort_at DESC, id DESC",
            listed=f"resource_type = {_literal(listed_type)}",
        )
        args = audit_args(event, event, self._clock.now(), _session(permit))
        async with self._database.connection() as conn:
            rows = await conn.fetch(sql, permit.patient_id, resource_types, _scope(permit), *args)
        found = [_imaging_record(row) for row in rows if row["id"] is not None]
        return found, rows[0]["account_active"]

    _EXPORT = """
        SELECT id, resource::text AS resource
        FROM record
        WHERE patient_id = $1
          AND (cardinality($2::text[]) = 0 OR resource_type = ANY($2::text[]))
        ORDER BY id
    """

    async def export_resources(self, permit: Permit) -> AsyncIterator[tuple[UUID, bytes]]:
        """Yields each resource's JSON as stored, without decoding it, through a
        server-side cursor: memory stays flat whatever the record's size. Must run
        inside the caller's unit of work (cursors need a transaction)."""
        async with self._database.transaction() as conn:
            async for row in conn.cursor(
                self._EXPORT, permit.patient_id, _scope(permit), prefetch=500
            ):
                yield row["id"], row["resource"].encode()


def _mutable_columns(records: list[IncomingRecord]) -> list[list[object]]:
    """What a newer version changes, one array per column, in _UPDATE's order."""
    return [
        [r.fields.category for r in records],
        [r.fields.code_system for r in records],
        [r.fields.code for r in records],
        [r.fields.display for r in records],
        [r.fields.effective_at for r in records],
        [r.fields.status for r in records],
        [r.fields.value for r in records],
        [r.fields.unit for r in records],
        [r.fields.version_id for r in records],
        [r.fields.last_updated for r in records],
        [r.content_hash for r in records],
        [r.resource_json.decode() for r in records],
    ]


def _stored_record(row: asyncpg.Record) -> StoredRecord:
    return StoredRecord(
        id=row["id"],
        patient_id=row["patient_id"],
        source=_source(row),
        source_resource_id=row["source_resource_id"],
        fields=IndexedFields(
            resource_type=row["resource_type"],
            source_id=row["source_resource_id"],
            category=row["category"],
            code_system=row["code_system"],
            code=row["code"],
            display=row["display"],
            effective_at=row["effective_at"],
            status=row["status"],
            value=row["value"],
            unit=row["unit"],
            version_id=row["source_version"],
            last_updated=row["source_updated_at"],
        ),
        version=row["version"],
        resource=row["resource"],
        is_supporting=row["is_supporting"],
        received_at=row["received_at"],
        updated_at=row["updated_at"],
    )


def _summary(row: asyncpg.Record) -> RecordSummary:
    return RecordSummary(
        id=row["id"],
        resource_type=row["resource_type"],
        category=row["category"],
        display=row["display"],
        value=row["value"],
        unit=row["unit"],
        status=row["status"],
        effective_at=row["effective_at"],
        sort_at=row["sort_at"],
        source=_source(row),
    )


def _imaging_record(row: asyncpg.Record) -> ImagingRecord:
    return ImagingRecord(
        record_id=row["id"],
        source=_source(row),
        resource_type=row["resource_type"],
        source_resource_id=row["source_resource_id"],
        effective_at=row["effective_at"],
        resource=row["resource"],
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
