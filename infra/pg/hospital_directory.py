"""Hospital names for the directory and for naming hospitals beside their ids."""

from __future__ import annotations

from uuid import UUID

from domain.access import Permit
from domain.hospitals.directory import DirectoryEntry, DirectoryQuery
from infra.pg.database import Database


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class PgHospitalNames:
    def __init__(self, database: Database):
        self._database = database

    # The directory is small (hundreds of hospitals), so a contains-match scan is
    # fine; keyset on (name, id) keeps pages stable while hospitals are added.
    _SEARCH = """
        SELECT h.id, h.name, h.city, EXISTS (
            SELECT 1 FROM hospital_link l
            JOIN consent c ON c.patient_id = l.patient_id AND c.id = l.consent_id
            WHERE l.patient_id = $1 AND l.hospital_id = h.id
              AND l.linked_at IS NOT NULL AND c.revoked_at IS NULL
        ) AS linked
        FROM hospital h
        WHERE ($2::text IS NULL OR h.name ILIKE $2 OR h.city ILIKE $2)
          AND ($3::text IS NULL OR (h.name, h.id) > ($3, $4::uuid))
        ORDER BY h.name, h.id
        LIMIT $5
    """

    async def search(self, permit: Permit, query: DirectoryQuery) -> list[DirectoryEntry]:
        after = query.after
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._SEARCH,
                permit.patient_id,
                _like_pattern(query.text) if query.text else None,
                after.name if after else None,
                after.id if after else None,
                query.limit,
            )
        return [
            DirectoryEntry(id=r["id"], name=r["name"], city=r["city"], linked=r["linked"])
            for r in rows
        ]

    _NAMES = "SELECT id, name FROM hospital WHERE id = ANY($1::uuid[])"

    async def names(self, hospital_ids: list[UUID]) -> dict[UUID, str]:
        if not hospital_ids:
            return {}
        # One statement: no BEGIN and COMMIT around it.
        async with self._database.connection() as conn:
            rows = await conn.fetch(self._NAMES, list(set(hospital_ids)))
        return {row["id"]: row["name"] for row in rows}
