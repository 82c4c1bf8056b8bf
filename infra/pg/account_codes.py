"""Mailed one-time codes in PostgreSQL: one live code per account and purpose."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.accounts.codes import StoredCode
from infra.pg.database import Database


class PgAccountCodeStore:
    def __init__(self, database: Database):
        self._database = database

    _REPLACE = """
        INSERT INTO account_code (patient_id, purpose, code_digest, new_email, created_at,
                                  expires_at, attempts, used_at)
        VALUES ($1, $2, $3, $4, $5, $6, 0, NULL)
        ON CONFLICT (patient_id, purpose) DO UPDATE
        SET code_digest = EXCLUDED.code_digest, new_email = EXCLUDED.new_email,
            created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
            attempts = 0, used_at = NULL
    """

    async def replace(
        self,
        *,
        patient_id: UUID,
        purpose: str,
        digest: bytes,
        new_email: str | None,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._REPLACE, patient_id, purpose, digest, new_email, created_at, expires_at
            )

    _LOCK = """
        SELECT patient_id, purpose, code_digest, new_email, expires_at, attempts, used_at
        FROM account_code WHERE patient_id = $1 AND purpose = $2
        FOR UPDATE
    """

    async def lock(self, patient_id: UUID, purpose: str) -> StoredCode | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._LOCK, patient_id, purpose)
        if row is None:
            return None
        return StoredCode(
            patient_id=row["patient_id"],
            purpose=row["purpose"],
            digest=bytes(row["code_digest"]),
            new_email=row["new_email"],
            expires_at=row["expires_at"],
            attempts=row["attempts"],
            used_at=row["used_at"],
        )

    _FAILURE = """
        UPDATE account_code SET attempts = attempts + 1 WHERE patient_id = $1 AND purpose = $2
    """

    async def count_failure(self, patient_id: UUID, purpose: str) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._FAILURE, patient_id, purpose)

    _USE = "UPDATE account_code SET used_at = $3 WHERE patient_id = $1 AND purpose = $2"

    async def use(self, patient_id: UUID, purpose: str, at: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._USE, patient_id, purpose, at)
