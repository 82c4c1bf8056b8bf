"""Account erasure: one DELETE; every patient table references `patient` with
ON DELETE CASCADE, so the rows of every feature go with it."""

from __future__ import annotations

from domain.access import Permit
from infra.pg.database import Database


class PgAccountEraser:
    def __init__(self, database: Database):
        self._database = database

    _ERASE = "DELETE FROM patient WHERE id = $1"

    async def erase(self, permit: Permit) -> bool:
        async with self._database.transaction() as conn:
            status = await conn.execute(self._ERASE, permit.patient_id)
        return status == "DELETE 1"
