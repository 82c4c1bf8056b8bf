"""The audit log in PostgreSQL: append-only rows, each inserted with the id of the
transaction that wrote it and no lock; the sequencer (infra/pg/audit_log.py) seals
them into the transparency log later."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from domain.access import Permit
from domain.audit.events import AuditEvent, RecordedAuditEvent, RequestContext
from domain.ports import Clock
from infra.pg.database import Database


class PgAuditLog:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    # xid and salt come from their column defaults (pg_current_xact_id(), random).
    INSERT = """
        INSERT INTO audit_event (
            patient_id, recorded_at, action, outcome, actor_type, actor_id, resource_type,
            resource_ids, purpose, reason, client_address, user_agent, request_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    """

    def insert_args(self, event: AuditEvent) -> tuple:
        return (
            event.patient_id,
            self._clock.now(),
            event.action,
            event.outcome,
            event.actor_type,
            event.actor_id,
            event.resource_type,
            list(event.resource_ids),
            event.purpose,
            event.reason,
            event.context.client_address,
            event.context.user_agent,
            event.context.request_id,
        )

    async def append(self, event: AuditEvent) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self.INSERT, *self.insert_args(event))

    _PAGE = """
        SELECT e.id, e.recorded_at, e.action, e.outcome, e.actor_type, e.actor_id, e.patient_id,
               e.resource_type, e.resource_ids, e.purpose, e.reason, e.client_address,
               e.user_agent, e.request_id, e.salt, e.erased_at, l.leaf_index
        FROM audit_event e LEFT JOIN audit_leaf l ON l.event_id = e.id
        WHERE e.patient_id = $1 AND ($2::bigint IS NULL OR e.id < $2)
        ORDER BY e.id DESC
        LIMIT $3
    """

    async def page(
        self, permit: Permit, before_id: int | None, limit: int
    ) -> list[RecordedAuditEvent]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._PAGE, permit.patient_id, before_id, limit)
        return [recorded_event(row) for row in rows]


def recorded_event(row: asyncpg.Record) -> RecordedAuditEvent:
    recorded_at: datetime = row["recorded_at"]
    return RecordedAuditEvent(
        id=row["id"],
        recorded_at=recorded_at,
        salt=bytes(row["salt"]),
        leaf_index=row["leaf_index"],
        erased=row["erased_at"] is not None,
        event=AuditEvent(
            action=row["action"],
            outcome=row["outcome"],
            actor_type=row["actor_type"],
            actor_id=row["actor_id"],
            patient_id=row["patient_id"],
            resource_type=row["resource_type"],
            resource_ids=tuple(row["resource_ids"]),
            purpose=row["purpose"],
            reason=row["reason"],
            context=RequestContext(
                client_address=row["client_address"],
                user_agent=row["user_agent"],
                request_id=row["request_id"],
            ),
        ),
    )
