"""Refresh-token families in PostgreSQL. A token is found by the SHA-256 of its
value (the only thing stored), which is why `lock` cannot filter by patient first:
the token is what tells us the patient."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from domain.accounts.sessions import Session
from domain.accounts.tokens import RefreshTokenState
from infra.pg.database import Database


class PgRefreshTokenStore:
    def __init__(self, database: Database):
        self._database = database

    # One round trip: the family and its first token.
    _NEW_FAMILY = """
        WITH family AS (
            INSERT INTO refresh_token_family (id, patient_id, created_at, expires_at,
                                              last_used_at, device_name, client_address)
            VALUES ($2, $3, $4, $6, $4, $7, $8)
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
        device_name: str | None = None,
        client_address: str | None = None,
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
                device_name,
                client_address,
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
        ),
        used AS (
            UPDATE refresh_token_family SET last_used_at = $3
            WHERE id IN (SELECT family_id FROM spent) AND patient_id = $2
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

    # What the access-token check asks on every request: one indexed row, the same
    # cost as the "does the account still exist" look-up it replaces.
    _ACTIVE = """
        SELECT EXISTS (
            SELECT 1 FROM refresh_token_family
            WHERE id = $2 AND patient_id = $1 AND revoked_at IS NULL)
           AND NOT EXISTS (SELECT 1 FROM signing_key WHERE kid = $3 AND revoked_at IS NOT NULL)
    """

    async def session_active(
        self, patient_id: UUID, family_id: UUID, *, signed_with: str | None = None
    ) -> bool:
        async with self._database.connection() as conn:
            return bool(await conn.fetchval(self._ACTIVE, patient_id, family_id, signed_with))

    # A family is a live session while it is not revoked and its newest token has
    # not expired.
    _SESSIONS = """
        SELECT f.id, f.device_name, f.client_address, f.created_at, f.last_used_at
        FROM refresh_token_family f
        WHERE f.patient_id = $1 AND f.revoked_at IS NULL
          AND EXISTS (SELECT 1 FROM refresh_token t
                      WHERE t.family_id = f.id AND t.patient_id = $1
                        AND t.spent_at IS NULL AND t.expires_at > $2)
        ORDER BY f.last_used_at DESC, f.id
    """

    async def sessions(self, patient_id: UUID, now: datetime) -> list[Session]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._SESSIONS, patient_id, now)
        return [
            Session(
                id=row["id"],
                device_name=row["device_name"],
                client_address=row["client_address"],
                created_at=row["created_at"],
                last_used_at=row["last_used_at"],
            )
            for row in rows
        ]

    _REVOKE_ALL = """
        UPDATE refresh_token_family SET revoked_at = $2, revoked_reason = $3
        WHERE patient_id = $1 AND revoked_at IS NULL AND ($4::uuid IS NULL OR id <> $4)
        RETURNING id
    """

    async def revoke_all(
        self, patient_id: UUID, at: datetime, reason: str, *, keep: UUID | None = None
    ) -> list[UUID]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._REVOKE_ALL, patient_id, at, reason, keep)
        return [row["id"] for row in rows]

    _REVOKE_ONE = """
        UPDATE refresh_token_family SET revoked_at = $3, revoked_reason = $4
        WHERE id = $2 AND patient_id = $1 AND revoked_at IS NULL
        RETURNING id
    """

    async def revoke_session(
        self, patient_id: UUID, family_id: UUID, at: datetime, reason: str
    ) -> bool:
        async with self._database.transaction() as conn:
            return (
                await conn.fetchval(self._REVOKE_ONE, patient_id, family_id, at, reason) is not None
            )
