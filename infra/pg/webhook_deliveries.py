"""Webhook bookkeeping in PostgreSQL: delivery ids with their replies
(deduplication), pushes parked until their link completes, and the fixed-window
counters behind the per-hospital rate limit and the wrong-code limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.hospitals.deliveries import ParkedPush
from infra.pg.database import Database


class PgWebhookDeliveryStore:
    def __init__(self, database: Database):
        self._database = database

    # Counts only admitted deliveries: past the limit the upsert updates nothing
    # and returns no row.
    _ADMIT = """
        INSERT INTO webhook_rate_window AS w (hospital_id, window_start, deliveries)
        VALUES ($1, $2, 1)
        ON CONFLICT (hospital_id, window_start) DO UPDATE SET deliveries = w.deliveries + 1
        WHERE w.deliveries < $3
        RETURNING deliveries
    """
    _FORGET_OLD_WINDOWS = (
        "DELETE FROM webhook_rate_window WHERE hospital_id = $1 AND window_start < $2"
    )

    async def admit(self, hospital_id: UUID, window: datetime, limit: int) -> bool:
        # Its own short transaction (never the delivery's): the counter row is hot.
        async with self._database.pool.acquire() as conn, conn.transaction():
            count = await conn.fetchval(self._ADMIT, hospital_id, window, limit)
            if count == 1:
                await conn.execute(self._FORGET_OLD_WINDOWS, hospital_id, window)
        return count is not None

    # ON CONFLICT waits for a concurrent claim of the same id to commit or roll
    # back, so a redelivery racing the original sees its reply.
    _CLAIM = """
        INSERT INTO webhook_delivery (hospital_id, delivery_id, body_digest, received_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (hospital_id, delivery_id) DO NOTHING
        RETURNING delivery_id
    """
    _KNOWN = """
        SELECT body_digest, reply FROM webhook_delivery
        WHERE hospital_id = $1 AND delivery_id = $2
    """

    async def claim(
        self, hospital_id: UUID, delivery_id: str, body_digest: bytes, at: datetime
    ) -> tuple[bytes, bytes | None] | None:
        async with self._database.transaction() as conn:
            if (
                await conn.fetchval(self._CLAIM, hospital_id, delivery_id, body_digest, at)
                is not None
            ):
                return None
            row = await conn.fetchrow(self._KNOWN, hospital_id, delivery_id)
        reply = row["reply"]
        return bytes(row["body_digest"]), bytes(reply) if reply is not None else None

    _REPLY = """
        UPDATE webhook_delivery SET reply = $3 WHERE hospital_id = $1 AND delivery_id = $2
    """

    async def record_reply(self, hospital_id: UUID, delivery_id: str, reply: bytes) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._REPLY, hospital_id, delivery_id, reply)

    _PARK = """
        INSERT INTO webhook_parked_push (hospital_id, patient_ref, delivery_id, bundle, received_at)
        VALUES ($1, $2, $3, $4, $5)
    """

    async def park(
        self,
        hospital_id: UUID,
        patient_ref: str,
        delivery_id: str,
        bundle: dict[str, Any],
        at: datetime,
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._PARK, hospital_id, patient_ref, delivery_id, bundle, at)

    _ERASED = """
        SELECT EXISTS (
            SELECT 1 FROM erased_patient_ref WHERE hospital_id = $1 AND ref_digest = $2)
    """

    async def erased(self, hospital_id: UUID, ref_digest: bytes) -> bool:
        async with self._database.transaction() as conn:
            return bool(await conn.fetchval(self._ERASED, hospital_id, ref_digest))

    async def lift_erasure(self, hospital_id: UUID, ref_digest: bytes) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                "DELETE FROM erased_patient_ref WHERE hospital_id = $1 AND ref_digest = $2",
                hospital_id,
                ref_digest,
            )

    _TAKE = """
        DELETE FROM webhook_parked_push WHERE hospital_id = $1 AND patient_ref = $2
        RETURNING id, delivery_id, bundle
    """

    async def take_parked(self, hospital_id: UUID, patient_ref: str) -> list[ParkedPush]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._TAKE, hospital_id, patient_ref)
        return [
            ParkedPush(row["delivery_id"], row["bundle"])
            for row in sorted(rows, key=lambda r: r["id"])
        ]
