"""Consent rows: created, listed, archived on revoke; never deleted."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.consent import Consent, ConsentKind, ConsentScope
from infra.pg.database import Database

_COLUMNS = """id, patient_id, kind, grantee_type, grantee_id, resource_types, period_start,
              period_end, revoked_at, created_at"""


def _consent(row: asyncpg.Record) -> Consent:
    return Consent(
        id=row["id"],
        patient_id=row["patient_id"],
        kind=row["kind"],
        grantee_type=row["grantee_type"],
        grantee_id=row["grantee_id"],
        scope=ConsentScope(resource_types=tuple(row["resource_types"])),
        period_start=row["period_start"],
        period_end=row["period_end"],
        revoked_at=row["revoked_at"],
        created_at=row["created_at"],
    )


class PgConsentStore:
    def __init__(self, database: Database):
        self._database = database

    _INSERT = f"""
        INSERT INTO consent (patient_id, kind, grantee_type, grantee_id, resource_types,
                             period_start, period_end, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $6)
        RETURNING {_COLUMNS}
    """

    async def create(
        self,
        patient_id: UUID,
        *,
        kind: ConsentKind,
        grantee_type: str,
        grantee_id: str,
        scope: ConsentScope,
        start: datetime,
        end: datetime | None,
    ) -> Consent:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._INSERT,
                patient_id,
                kind,
                grantee_type,
                grantee_id,
                list(scope.resource_types),
                start,
                end,
            )
        return _consent(row)

    _GET = f"SELECT {_COLUMNS} FROM consent WHERE patient_id = $1 AND id = $2"

    async def get(self, patient_id: UUID, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, patient_id, consent_id)
        return _consent(row) if row else None

    _HOLD = f"SELECT {_COLUMNS} FROM consent WHERE patient_id = $1 AND id = $2 FOR SHARE"

    async def hold(self, patient_id: UUID, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._HOLD, patient_id, consent_id)
        return _consent(row) if row else None

    _LATEST_FOR_GRANTEE = f"""
        SELECT {_COLUMNS} FROM consent
        WHERE patient_id = $1 AND kind = $2 AND grantee_type = $3 AND grantee_id = $4
        ORDER BY (revoked_at IS NULL) DESC, created_at DESC
        LIMIT 1
    """

    async def for_grantee(
        self, patient_id: UUID, kind: ConsentKind, grantee_type: str, grantee_id: str
    ) -> Consent | None:
        """The consent a grantee relies on: a live one if there is one, else the
        latest archived one (so a refusal can say why)."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._LATEST_FOR_GRANTEE, patient_id, kind, grantee_type, grantee_id
            )
        return _consent(row) if row else None

    _LIST = (
        f"SELECT {_COLUMNS} FROM consent WHERE patient_id = $1 ORDER BY created_at DESC, id DESC"
    )

    async def list(self, patient_id: UUID) -> list[Consent]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._LIST, patient_id)
        return [_consent(row) for row in rows]

    _REMOVE_END = f"""
        UPDATE consent SET period_end = NULL
        WHERE patient_id = $1 AND id = $2 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
    """

    async def remove_end(self, patient_id: UUID, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._REMOVE_END, patient_id, consent_id)
        return _consent(row) if row else None

    _REVOKE = f"""
        UPDATE consent SET revoked_at = $3
        WHERE patient_id = $1 AND id = $2 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
    """

    async def revoke(self, patient_id: UUID, consent_id: UUID, at: datetime) -> Consent | None:
        """Archives the consent; None when it does not exist for this patient or
        was already revoked."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._REVOKE, patient_id, consent_id, at)
        return _consent(row) if row else None
