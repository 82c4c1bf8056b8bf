"""Consent rows: created, listed, archived on revoke; never deleted. Every query
names the permit's patient, except `relied_on`: the consent a grantee presents,
which the policy then checks."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.access import Permit
from domain.consents.consent import Consent, ConsentKind, ConsentScope
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
        permit: Permit,
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
                permit.patient_id,
                kind,
                grantee_type,
                grantee_id,
                list(scope.resource_types),
                start,
                end,
            )
        return _consent(row)

    _GET = f"SELECT {_COLUMNS} FROM consent WHERE patient_id = $1 AND id = $2"

    async def get(self, permit: Permit, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, permit.patient_id, consent_id)
        return _consent(row) if row else None

    _RELIED_ON = f"SELECT {_COLUMNS} FROM consent WHERE id = $1"

    async def relied_on(self, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._RELIED_ON, consent_id)
        return _consent(row) if row else None

    _HOLD = f"SELECT {_COLUMNS} FROM consent WHERE id = $1 FOR SHARE"

    async def hold(self, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._HOLD, consent_id)
        return _consent(row) if row else None

    _LIST = (
        f"SELECT {_COLUMNS} FROM consent WHERE patient_id = $1 ORDER BY created_at DESC, id DESC"
    )

    async def list(self, permit: Permit) -> list[Consent]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._LIST, permit.patient_id)
        return [_consent(row) for row in rows]

    _REMOVE_END = f"""
        UPDATE consent SET period_end = NULL
        WHERE patient_id = $1 AND id = $2 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
    """

    async def remove_end(self, permit: Permit, consent_id: UUID) -> Consent | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._REMOVE_END, permit.patient_id, consent_id)
        return _consent(row) if row else None

    _REVOKE = f"""
        UPDATE consent SET revoked_at = $3
        WHERE patient_id = $1 AND id = $2 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
    """

    async def revoke(self, permit: Permit, consent_id: UUID, at: datetime) -> Consent | None:
        """Archives the consent; None when it does not exist for this patient or
        was already revoked."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._REVOKE, permit.patient_id, consent_id, at)
        return _consent(row) if row else None
