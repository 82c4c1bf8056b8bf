"""Patient accounts in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.accounts.account import Account, Credentials, NewAccount
from domain.errors import EmailAlreadyRegistered
from infra.pg.database import Database


class PgAccountStore:
    def __init__(self, database: Database):
        self._database = database

    _INSERT = """
        INSERT INTO patient (id, email, display_name, password_hash, created_at,
                             password_changed_at)
        VALUES ($1, $2, $3, $4, $5, $5)
        ON CONFLICT DO NOTHING
        RETURNING id, email, display_name, created_at
    """

    async def add(self, account: NewAccount) -> Account:
        # ON CONFLICT, not a caught unique violation: PostgreSQL logs a violation
        # with the duplicate key's value (the email) in its DETAIL.
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._INSERT,
                account.id,
                account.email,
                account.display_name,
                account.password_hash,
                account.created_at,
            )
        if row is None:
            raise EmailAlreadyRegistered("An account with this email address already exists.")
        return _account(row)

    _CREDENTIALS = """
        SELECT id, password_hash FROM patient WHERE lower(email) = lower($1)
    """

    async def credentials(self, email: str) -> Credentials | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._CREDENTIALS, email)
        if row is None:
            return None
        return Credentials(patient_id=row["id"], password_hash=row["password_hash"])

    # Only if nobody changed the hash meanwhile (e.g. a password change racing a login).
    _REPLACE_HASH = """
        UPDATE patient SET password_hash = $3, password_changed_at = $4
        WHERE id = $1 AND password_hash = $2
    """

    async def replace_password_hash(
        self, patient_id: UUID, old_hash: str, new_hash: str, at: datetime
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._REPLACE_HASH, patient_id, old_hash, new_hash, at)

    _GET = """
        SELECT id, email, display_name, created_at FROM patient WHERE id = $1
    """

    async def get(self, patient_id: UUID) -> Account | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, patient_id)
        return _account(row) if row is not None else None

    _EXISTS = """
        SELECT EXISTS (SELECT 1 FROM patient WHERE id = $1)
           AND NOT EXISTS (SELECT 1 FROM signing_key WHERE kid = $2 AND revoked_at IS NOT NULL)
    """

    async def exists(self, patient_id: UUID, *, signed_with: str | None = None) -> bool:
        async with self._database.connection() as conn:
            return bool(await conn.fetchval(self._EXISTS, patient_id, signed_with))


def _account(row: asyncpg.Record) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        created_at=row["created_at"],
    )
