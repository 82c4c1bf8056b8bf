"""Patient accounts in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.accounts.account import Account, Credentials, NewAccount
from domain.errors import EmailAlreadyRegistered
from infra.pg.database import Database

_COLUMNS = "id, email, display_name, created_at, email_verified_at, locale, time_zone"


class PgAccountStore:
    def __init__(self, database: Database):
        self._database = database

    _INSERT = f"""
        INSERT INTO patient (id, email, display_name, password_hash, created_at,
                             password_changed_at, email_verified_at, locale, time_zone)
        VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)
        ON CONFLICT DO NOTHING
        RETURNING {_COLUMNS}
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
                account.email_verified_at,
                account.locale,
                account.time_zone,
            )
        if row is None:
            raise EmailAlreadyRegistered("An account with this email address already exists.")
        return _account(row)

    _CREDENTIALS = """
        SELECT id, password_hash, email_verified_at FROM patient WHERE lower(email) = lower($1)
    """

    async def credentials(self, email: str) -> Credentials | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._CREDENTIALS, email)
        if row is None:
            return None
        return Credentials(
            patient_id=row["id"],
            password_hash=row["password_hash"],
            email_verified=row["email_verified_at"] is not None,
        )

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

    _GET = f"SELECT {_COLUMNS} FROM patient WHERE id = $1"

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

    _FIND = f"SELECT {_COLUMNS} FROM patient WHERE lower(email) = lower($1)"

    async def find(self, email: str) -> Account | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._FIND, email)
        return _account(row) if row is not None else None

    _PASSWORD_HASH = "SELECT password_hash FROM patient WHERE id = $1"

    async def password_hash(self, patient_id: UUID) -> str | None:
        async with self._database.transaction() as conn:
            return await conn.fetchval(self._PASSWORD_HASH, patient_id)

    _SET_HASH = "UPDATE patient SET password_hash = $2, password_changed_at = $3 WHERE id = $1"

    async def set_password_hash(self, patient_id: UUID, new_hash: str, at: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._SET_HASH, patient_id, new_hash, at)

    _VERIFIED = """
        UPDATE patient SET email_verified_at = $2 WHERE id = $1 AND email_verified_at IS NULL
    """

    async def mark_verified(self, patient_id: UUID, at: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._VERIFIED, patient_id, at)

    _UPDATE_PROFILE = f"""
        UPDATE patient SET display_name = $2, locale = $3, time_zone = $4 WHERE id = $1
        RETURNING {_COLUMNS}
    """

    async def update_profile(
        self, patient_id: UUID, *, display_name: str | None, locale: str, time_zone: str
    ) -> Account | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._UPDATE_PROFILE, patient_id, display_name, locale, time_zone
            )
        return _account(row) if row is not None else None

    # The new address was proven by a code sent to it: it is verified.
    _CHANGE_EMAIL = "UPDATE patient SET email = $2, email_verified_at = $3 WHERE id = $1"

    async def change_email(self, patient_id: UUID, email: str, at: datetime) -> None:
        async with self._database.transaction() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(self._CHANGE_EMAIL, patient_id, email, at)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "patient_email_key":
                    raise EmailAlreadyRegistered(
                        "Another account uses this email address."
                    ) from None
                raise


def _account(row: asyncpg.Record) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        email_verified=row["email_verified_at"] is not None,
        locale=row["locale"],
        time_zone=row["time_zone"],
    )
