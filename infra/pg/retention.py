"""Deletes bookkeeping rows past their retention (see domain/retention.py), in
bounded batches so that no single statement holds locks for long."""

from __future__ import annotations

from datetime import datetime

from infra.pg.database import Database


class PgRetention:
    def __init__(self, database: Database):
        self._database = database

    _PRUNE_DELIVERIES = """
        DELETE FROM webhook_delivery WHERE (hospital_id, delivery_id) IN (
            SELECT hospital_id, delivery_id FROM webhook_delivery
            WHERE received_at < $1 LIMIT $2
        )
    """

    async def prune_webhook_deliveries(self, received_before: datetime, limit: int = 5000) -> int:
        return await self._delete(self._PRUNE_DELIVERIES, received_before, limit)

    _DROP_PARKED = """
        DELETE FROM webhook_parked_push WHERE id IN (
            SELECT id FROM webhook_parked_push WHERE received_at < $1 LIMIT $2
        )
    """

    async def drop_parked_pushes(self, received_before: datetime, limit: int = 5000) -> int:
        return await self._delete(self._DROP_PARKED, received_before, limit)

    async def _delete(self, sql: str, before: datetime, limit: int) -> int:
        total = 0
        while True:
            async with self._database.transaction() as conn:
                status = await conn.execute(sql, before, limit)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < limit:
                return total
