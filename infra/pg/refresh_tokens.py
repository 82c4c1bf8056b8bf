"""Refresh-token families in PostgreSQL. A token is found by the SHA-256 of its
value (the only thing stored), which is why `lock` cannot filter by patient first:
the token is what tells us the patient."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from domain.accounts.tokens import RefreshTokenState
from infra.pg.database import Database


class PgRefreshTokenStore:
    def __init__(self, database: Database):
        self._database = database

    # One round trip: the family and its first token.
    _NEW_FAMILY = """
        WITH family AS (
            INSERT INTO refresh_token_family (id, patient_id, created_at, expires_at)
            VALUES ($2, $3, $4, $6)
        )
        INSERT INTO refresh_token (token_hash, family_id, patient_id, issued_at, expires_at)
        VALUES ($1, $2, $3, $4, $5)
    """

    async def start_family(
        self,
        *,
        patient_id: UUID,
        token_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
        family_expires_at: datetime,
    ) -> UUID:
        family_id = uuid4()
        async with self._database.transaction() as conn:
            await conn.execute(
                self._NEW_FAMILY,
                token_hash,
                family_id,
                patient_id,
                issued_at,
                min(expires_at, family_expires_at),
                family_expires_at,
            )
        return family_id

    # Locking the family row serialises every refresh and logout within a family:
    # of two parallel refreshes with one token, the second sees it spent.
    _LOCK = """
        SELECT t.family_id, t.patient_id, t.expires_at, t.spent_at, f.revoked_at,
               f.expires_at AS family_expires_at
        FROM refresh_token t
        JOIN refresh_token_family f ON f.id = t.family_id AND f.patient_id = t.patient_id
        WHERE t.token_hash = $1
        FOR UPDATE OF f
    """

    async def lock(self, token_hash: bytes) -> RefreshTokenState | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._LOCK, token_hash)
        if row is None:
            return None
        return RefreshTokenState(
            family_id=row["family_id"],
            patient_id=row["patient_id"],
            expires_at=row["expires_at"],
            spent_at=row["spent_at"],
            family_revoked_at=row["revoked_at"],
            family_expires_at=row["family_expires_at"],
        )

    # Spends the old token only if it is unspent, and issues the next only then.
    _SPEND_AND_ISSUE = """
        WITH spent AS (
            UPDATE refresh_token SET spent_at = $3
            WHERE token_hash = $1 AND patient_id = $2 AND spent_at IS NULL
            RETURNING family_id
        )
        INSERT INTO refresh_token (token_hash, family_id, patient_id, issued_at, expires_at)
        SELECT $4, family_id, $2, $3, $5 FROM spent
        RETURNING token_hash
    """

    async def spend_and_issue(
        self,
        *,
        spent_hash: bytes,
        state: RefreshTokenState,
        new_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
    ) -> bool:
        async with self._database.transaction() as conn:
            issued = await conn.fetchval(
                self._SPEND_AND_ISSUE, spent_hash, state.patient_id, issued_at, new_hash, expires_at
            )
        return issued is not None

    _REVOKE = """
        UPDATE refresh_token_family SET revoked_at = $3, revoked_reason = $4
        WHERE id = $1 AND patient_id = $2 AND revoked_at IS NULL
    """

    async def revoke_family(
        self, family_id: UUID, patient_id: UUID, at: datetime, reason: str
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._REVOKE, family_id, patient_id, at, reason)
