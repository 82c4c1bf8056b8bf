"""The audit log in PostgreSQL: append-only rows, one hash chain per patient."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.access import Permit
from domain.audit.chain import GENESIS_HASH, chain_hash
from domain.audit.events import AuditEvent, RecordedAuditEvent, RequestContext
from domain.ports import Clock
from infra.pg.database import Database

NO_PATIENT_CHAIN = UUID(int=0)


class PgAuditLog:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    _LOCK_HEAD = """
        INSERT INTO audit_chain_head (chain_key, last_sequence, last_hash)
        VALUES ($1, 0, $2)
        ON CONFLICT (chain_key) DO UPDATE SET chain_key = EXCLUDED.chain_key
        RETURNING last_sequence, last_hash
    """
    # The event and the chain's new head in one statement: one round trip.
    _INSERT_AND_ADVANCE = """
        WITH event AS (
            INSERT INTO audit_event (
                patient_id, chain_key, sequence, recorded_at, action, outcome, actor_type,
                actor_id, resource_type, resource_ids, purpose, reason, client_address,
                user_agent, request_id, previous_hash, hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
            RETURNING chain_key
        )
        UPDATE audit_chain_head SET last_sequence = $3, last_hash = $17
        WHERE chain_key = (SELECT chain_key FROM event)
    """

    async def append(self, event: AuditEvent) -> None:
        chain_key = event.patient_id or NO_PATIENT_CHAIN
        # Database timestamps keep microseconds; truncate here so the hash we
        # compute is over exactly what is stored.
        recorded_at = self._clock.now()
        async with self._database.transaction() as conn:
            # The upsert takes the row lock that orders this chain's appends.
            head = await conn.fetchrow(self._LOCK_HEAD, chain_key, GENESIS_HASH)
            sequence = head["last_sequence"] + 1
            previous_hash = bytes(head["last_hash"])
            digest = chain_hash(event, recorded_at, sequence, previous_hash)
            await conn.execute(
                self._INSERT_AND_ADVANCE,
                event.patient_id,
                chain_key,
                sequence,
                recorded_at,
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
                previous_hash,
                digest,
            )

    _PAGE = """
        SELECT id, sequence, recorded_at, action, outcome, actor_type, actor_id, patient_id,
               resource_type, resource_ids, purpose, reason, client_address, user_agent,
               request_id, previous_hash, hash
        FROM audit_event
        WHERE patient_id = $1 AND ($2::bigint IS NULL OR id < $2)
        ORDER BY id DESC
        LIMIT $3
    """

    async def page(
        self, permit: Permit, before_id: int | None, limit: int
    ) -> list[RecordedAuditEvent]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._PAGE, permit.patient_id, before_id, limit)
        return [_recorded(row) for row in rows]

    _CHAIN = """
        SELECT id, sequence, recorded_at, action, outcome, actor_type, actor_id, patient_id,
               resource_type, resource_ids, purpose, reason, client_address, user_agent,
               request_id, previous_hash, hash
        FROM audit_event
        WHERE chain_key = $1 AND patient_id = $1
        ORDER BY sequence
    """

    async def chain(self, permit: Permit) -> list[RecordedAuditEvent]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._CHAIN, permit.patient_id)
        return [_recorded(row) for row in rows]


def _recorded(row: asyncpg.Record) -> RecordedAuditEvent:
    recorded_at: datetime = row["recorded_at"]
    return RecordedAuditEvent(
        id=row["id"],
        sequence=row["sequence"],
        recorded_at=recorded_at,
        previous_hash=bytes(row["previous_hash"]),
        hash=bytes(row["hash"]),
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
