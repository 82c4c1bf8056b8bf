"""Shares in PostgreSQL: the share rows, file tickets, accesses, the records a
scope may select, and the manifest request counters. Keys and held links are
sealed with the secrets key before they reach a row."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from domain.access import Permit
from domain.sharing.model import (
    NewShare,
    Share,
    ShareAccess,
    SharePageCursor,
    ThrottleRefusal,
)
from domain.sharing.scope import SUMMARY_TYPES, Candidate, ShareScope
from infra.pg.database import Database
from infra.secret_box import SecretBox

_COLUMNS = """id, patient_id, consent_id, label, flag, scope, passcode_hash, attempts_left,
              long_term, record_ids, ciphertext_key, ciphertext_bytes, expires_at, created_at,
              revoked_at, disabled_at"""


def _share(row: asyncpg.Record) -> Share:
    return Share(
        id=row["id"],
        patient_id=row["patient_id"],
        consent_id=row["consent_id"],
        label=row["label"],
        flag=row["flag"],
        scope=msgspec.convert(row["scope"], ShareScope),
        long_term=row["long_term"],
        passcode_hash=row["passcode_hash"],
        attempts_left=row["attempts_left"],
        record_ids=tuple(row["record_ids"]),
        ciphertext_key=row["ciphertext_key"],
        ciphertext_bytes=row["ciphertext_bytes"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        disabled_at=row["disabled_at"],
    )


_PRUNE_PROBABILITY = 0.01


def _key_context(share_id: UUID) -> bytes:
    return b"share-key:" + share_id.bytes


def _link_context(share_id: UUID) -> bytes:
    return b"share-link:" + share_id.bytes


class PgShareStore:
    def __init__(self, database: Database, box: SecretBox):
        self._database = database
        self._box = box

    _INSERT = f"""
        INSERT INTO share (id, patient_id, consent_id, token_digest, label, flag, scope,
                           passcode_hash, attempts_left, long_term, key_sealed, link_sealed,
                           link_held_until, record_ids, ciphertext_key, ciphertext_bytes,
                           expires_at, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
        RETURNING {_COLUMNS}
    """

    async def create(self, permit: Permit, share: NewShare) -> Share:
        key_sealed = (
            self._box.seal(share.key, context=_key_context(share.id)) if share.key else None
        )
        link_sealed = self._box.seal(share.link.encode(), context=_link_context(share.id))
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._INSERT,
                share.id,
                permit.patient_id,
                share.consent_id,
                share.token_digest,
                share.label,
                share.flag,
                msgspec.to_builtins(share.scope),
                share.passcode_hash,
                share.attempts_left,
                share.long_term,
                key_sealed,
                link_sealed,
                share.link_held_until,
                list(share.record_ids),
                share.ciphertext_key,
                share.ciphertext_bytes,
                share.expires_at,
                share.created_at,
            )
        return _share(row)

    _PAGE = f"""
        SELECT {_COLUMNS} FROM share
        WHERE patient_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
        ORDER BY created_at DESC, id DESC
        LIMIT $4
    """

    async def page(self, permit: Permit, after: SharePageCursor | None, limit: int) -> list[Share]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._PAGE,
                permit.patient_id,
                after.created_at if after else None,
                after.id if after else None,
                limit,
            )
        return [_share(row) for row in rows]

    _GET = f"SELECT {_COLUMNS} FROM share WHERE patient_id = $1 AND id = $2"

    async def get(self, permit: Permit, share_id: UUID) -> Share | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, permit.patient_id, share_id)
        return _share(row) if row else None

    _BY_TOKEN = f"SELECT {_COLUMNS} FROM share WHERE token_digest = $1"

    async def by_token(self, token_digest: bytes) -> Share | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._BY_TOKEN, token_digest)
        return _share(row) if row else None

    _WITH_HELD_LINK = f"""
        SELECT {_COLUMNS},
               CASE WHEN link_held_until IS NULL OR link_held_until > $3 THEN link_sealed END
                   AS link_sealed
        FROM share WHERE patient_id = $1 AND id = $2
    """

    async def with_held_link(
        self, permit: Permit, share_id: UUID, now: datetime
    ) -> tuple[Share, str | None] | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._WITH_HELD_LINK, permit.patient_id, share_id, now)
        if row is None:
            return None
        sealed = row["link_sealed"]
        link = (
            self._box.open(bytes(sealed), context=_link_context(share_id)).decode()
            if sealed is not None
            else None
        )
        return _share(row), link

    _FORGET_LINKS = """
        UPDATE share SET link_sealed = NULL
        WHERE link_sealed IS NOT NULL AND link_held_until <= $1
    """

    async def forget_links(self, now: datetime) -> int:
        async with self._database.transaction() as conn:
            status = await conn.execute(self._FORGET_LINKS, now)
        return int(status.split()[-1])

    # Revoking forgets everything that could open the content again.
    _REVOKE = f"""
        UPDATE share SET revoked_at = $3, key_sealed = NULL, link_sealed = NULL
        WHERE patient_id = $1 AND id = $2 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
    """

    async def revoke(self, permit: Permit, share_id: UUID, now: datetime) -> Share | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._REVOKE, permit.patient_id, share_id, now)
        return _share(row) if row else None

    _KEY = "SELECT key_sealed FROM share WHERE patient_id = $1 AND id = $2"

    async def key(self, permit: Permit, share_id: UUID) -> bytes:
        async with self._database.transaction() as conn:
            sealed = await conn.fetchval(self._KEY, permit.patient_id, share_id)
        if sealed is None:
            raise LookupError("this share keeps no key")
        return self._box.open(bytes(sealed), context=_key_context(share_id))

    # One statement, so parallel guesses line up on the row lock: none can take
    # an attempt that is not there. Committed at once (its own transaction).
    _RESERVE = """
        UPDATE share SET attempts_left = attempts_left - 1
        WHERE patient_id = $1 AND id = $2 AND attempts_left > 0 AND disabled_at IS NULL
        RETURNING attempts_left
    """

    async def reserve_attempt(self, permit: Permit, share_id: UUID) -> int | None:
        async with self._database.pool.acquire() as conn:
            return await conn.fetchval(self._RESERVE, permit.patient_id, share_id)

    _REFUND = """
        UPDATE share SET attempts_left = attempts_left + 1 WHERE patient_id = $1 AND id = $2
    """

    async def refund_attempt(self, permit: Permit, share_id: UUID) -> None:
        async with self._database.pool.acquire() as conn:
            await conn.execute(self._REFUND, permit.patient_id, share_id)

    _DISABLE = """
        UPDATE share SET disabled_at = $3
        WHERE patient_id = $1 AND id = $2 AND disabled_at IS NULL
    """

    async def disable(self, permit: Permit, share_id: UUID, now: datetime) -> None:
        async with self._database.pool.acquire() as conn:
            await conn.execute(self._DISABLE, permit.patient_id, share_id, now)

    # Bounded by the permit's patient and its consent's types; the scope's easy
    # parts are filtered here, the domain's `select` has the last word.
    _CANDIDATES = """
        SELECT r.id, r.resource_type, r.category, r.hospital_id, r.effective_at, r.resource,
               u.key AS file_key, u.size AS file_size, u.content_type AS file_content_type
        FROM record r
        LEFT JOIN upload u ON u.patient_id = r.patient_id AND u.record_id = r.id
        WHERE r.patient_id = $1 AND NOT r.is_supporting
          AND (cardinality($2::text[]) = 0 OR r.resource_type = ANY($2::text[]))
          AND (cardinality($3::text[]) = 0 OR r.resource_type = ANY($3::text[]))
          AND (cardinality($4::uuid[]) = 0 OR r.id = ANY($4::uuid[]))
          AND (cardinality($5::uuid[]) = 0 OR r.hospital_id = ANY($5::uuid[]))
          AND (NOT $6 OR r.source_kind = 'self' OR EXISTS (
                SELECT 1 FROM consent c
                WHERE c.patient_id = r.patient_id AND c.kind = 'data-source'
                  AND c.grantee_type = 'hospital' AND c.grantee_id = r.hospital_id::text
                  AND c.revoked_at IS NULL AND (c.period_end IS NULL OR c.period_end > now())))
        ORDER BY r.sort_at DESC, r.id DESC
    """

    async def candidates(
        self, permit: Permit, scope: ShareScope, *, live_sources_only: bool
    ) -> list[Candidate]:
        types = scope.resource_types or (SUMMARY_TYPES if scope.is_summary else ())
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._CANDIDATES,
                permit.patient_id,
                list(permit.scope.resource_types),
                list(types),
                list(scope.record_ids),
                list(scope.hospital_ids),
                live_sources_only,
            )
        return [
            Candidate(
                id=row["id"],
                resource_type=row["resource_type"],
                category=row["category"],
                hospital_id=row["hospital_id"],
                effective_at=row["effective_at"],
                resource=row["resource"],
                file_key=row["file_key"],
                file_size=row["file_size"],
                file_content_type=row["file_content_type"],
            )
            for row in rows
        ]

    _PATIENT = """
        SELECT p.display_name, (
            SELECT r.resource FROM record r
            WHERE r.patient_id = p.id AND r.resource_type = 'Patient'
            ORDER BY r.updated_at DESC LIMIT 1
        ) AS known
        FROM patient p WHERE p.id = $1
    """

    async def patient_resource(self, permit: Permit) -> dict:
        from domain.sharing.bundle import minimal_patient

        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._PATIENT, permit.patient_id)
        if row is None:
            return minimal_patient(permit.patient_id, None, None)
        return minimal_patient(permit.patient_id, row["known"], row["display_name"])

    _ORGANIZATIONS = "SELECT id, name FROM hospital WHERE id = ANY($1::uuid[])"

    async def organizations(self, hospital_ids: list[UUID]) -> dict[UUID, str]:
        if not hospital_ids:
            return {}
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._ORGANIZATIONS, hospital_ids)
        return {row["id"]: row["name"] for row in rows}

    _RECORD_ACCESS = """
        INSERT INTO share_access (share_id, kind, recipient, client_address, user_agent, files,
                                  accessed_at)
        SELECT id, $3, $4, $5, $6, $7, $8 FROM share WHERE patient_id = $1 AND id = $2
    """

    async def record_access(self, permit: Permit, share_id: UUID, access: ShareAccess) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._RECORD_ACCESS,
                permit.patient_id,
                share_id,
                access.kind,
                access.recipient,
                access.client_address,
                access.user_agent,
                access.files,
                access.accessed_at,
            )

    _ACCESSES = """
        SELECT a.kind, a.recipient, a.client_address, a.user_agent, a.files, a.accessed_at
        FROM share_access a JOIN share s ON s.id = a.share_id
        WHERE s.patient_id = $1 AND a.share_id = $2 ORDER BY a.id DESC LIMIT $3
    """

    async def accesses(self, permit: Permit, share_id: UUID, limit: int) -> list[ShareAccess]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._ACCESSES, permit.patient_id, share_id, limit)
        return [ShareAccess(**dict(row)) for row in rows]

    _ISSUE_TICKET = """
        INSERT INTO share_file_ticket (token_digest, share_id, recipient, expires_at)
        SELECT $3, id, $4, $5 FROM share WHERE patient_id = $1 AND id = $2
    """

    async def issue_ticket(
        self,
        permit: Permit,
        share_id: UUID,
        token_digest: bytes,
        recipient: str,
        expires_at: datetime,
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._ISSUE_TICKET, permit.patient_id, share_id, token_digest, recipient, expires_at
            )

    # Spent in a statement of its own: a location is good for one use even
    # when what follows is refused.
    _USE_TICKET = f"""
        WITH spent AS (
            UPDATE share_file_ticket SET used_at = $2
            WHERE token_digest = $1 AND used_at IS NULL AND expires_at > $2
            RETURNING share_id, recipient
        )
        SELECT {", ".join("s." + c.strip() for c in _COLUMNS.split(","))}, spent.recipient
        FROM spent JOIN share s ON s.id = spent.share_id
    """

    async def use_ticket(self, token_digest: bytes, now: datetime) -> tuple[Share, str] | None:
        async with self._database.pool.acquire() as conn:
            row = await conn.fetchrow(self._USE_TICKET, token_digest, now)
        return (_share(row), row["recipient"]) if row else None


class PgShareRequestThrottle:
    """Fixed windows per subject (a link, a client address), counted in
    PostgreSQL so every API process sees the same counts."""

    def __init__(self, database: Database, *, per_link: int, per_address: int, window_seconds: int):
        self._database = database
        self._limits = {"link": per_link, "address": per_address}
        self._window = window_seconds

    _COUNT = """
        INSERT INTO share_request_window AS w (subject, window_start, hits)
        SELECT s, $2, 1 FROM unnest($1::text[]) AS s
        ON CONFLICT (subject, window_start) DO UPDATE SET hits = w.hits + 1
        RETURNING subject, hits
    """
    _PRUNE = "DELETE FROM share_request_window WHERE window_start < $1"

    async def admit(self, subjects: list[str], now: datetime) -> ThrottleRefusal | None:
        epoch = int(now.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % self._window, tz=now.tzinfo)
        async with self._database.pool.acquire() as conn:
            rows = await conn.fetch(self._COUNT, sorted(subjects), start)
            # Old windows are dropped now and then, not on every request.
            if random.random() < _PRUNE_PROBABILITY:  # noqa: S311 (not a secret)
                await conn.execute(self._PRUNE, start - timedelta(seconds=self._window))
        for row in rows:
            kind = row["subject"].split(":", 1)[0]
            limit = self._limits.get(kind, 0)
            if row["hits"] > limit:
                left = (start + timedelta(seconds=self._window) - now).total_seconds()
                return ThrottleRefusal(max(1, int(left) + 1), limit, self._window)
        return None
