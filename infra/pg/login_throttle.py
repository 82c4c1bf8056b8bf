"""Login throttling counted in PostgreSQL, so every API process sees the same counts.

Each attempt is written (and committed) before the password is checked and deleted
if it turns out not to be a failed guess; what is left inside the window are
failures plus attempts still being checked. The check and the insert for one key
run under a transaction-scoped advisory lock on that key, so parallel attempts on
one account cannot all slip under the limit."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from domain.accounts.login_throttle import LoginAttempt, ThrottlePolicy
from domain.errors import RateLimited
from infra.pg.database import Database

_PURGE_PROBABILITY = 0.01


class PgLoginThrottle:
    def __init__(self, database: Database, policy: ThrottlePolicy):
        self._database = database
        self._policy = policy

    @property
    def policy(self) -> ThrottlePolicy:
        return self._policy

    # Both keys in one statement, always account first: no lock cycles.
    _LOCK_KEYS = """
        SELECT pg_advisory_xact_lock(hashtextextended('phr.login:account:' || $1, 0)),
               pg_advisory_xact_lock(hashtextextended('phr.login:address:' || $2, 0))
    """
    # Run after the locks, so its snapshot holds every attempt committed before.
    # For each key: the limit-th most recent attempt in the window (if there is one,
    # the key is at its limit until that attempt leaves the window); attempts that
    # left the window are forgotten; the new attempt is recorded unless blocked.
    _CHECK_AND_RECORD = """
        WITH key (scope, subject, attempt_limit) AS (
            VALUES ('account', $1::text, $3::int), ('address', $2::text, $4::int)
        ),
        blocking AS (
            SELECT key.scope, key.attempt_limit, (
                SELECT a.attempted_at FROM login_attempt a
                WHERE a.scope = key.scope AND a.subject = key.subject AND a.attempted_at > $5
                ORDER BY a.attempted_at DESC
                OFFSET key.attempt_limit - 1 LIMIT 1
            ) AS blocked_by
            FROM key
        ),
        forgotten AS (
            DELETE FROM login_attempt a USING key
            WHERE a.scope = key.scope AND a.subject = key.subject AND a.attempted_at <= $5
        ),
        recorded AS (
            INSERT INTO login_attempt (scope, subject, attempted_at)
            SELECT key.scope, key.subject, $6 FROM key
            WHERE NOT EXISTS (SELECT 1 FROM blocking WHERE blocked_by IS NOT NULL)
            RETURNING id
        )
        SELECT blocking.scope, blocking.attempt_limit, blocking.blocked_by,
               (SELECT array_agg(id) FROM recorded) AS ids
        FROM blocking
    """
    # Keys that never come back would keep their rows; sweep a bounded batch now and then.
    _PURGE = """
        DELETE FROM login_attempt WHERE id IN (
            SELECT id FROM login_attempt WHERE attempted_at <= $1 LIMIT 1000)
    """

    async def begin(self, *, account_key: str, address_key: str, now: datetime) -> LoginAttempt:
        policy = self._policy
        window = timedelta(seconds=policy.window_seconds)
        since = now - window
        async with self._database.transaction() as conn:
            await conn.execute(self._LOCK_KEYS, account_key, address_key)
            rows = await conn.fetch(
                self._CHECK_AND_RECORD,
                account_key,
                address_key,
                policy.account_failures,
                policy.address_failures,
                since,
                now,
            )
            if random.random() < _PURGE_PROBABILITY:  # noqa: S311 - not security relevant
                await conn.execute(self._PURGE, since)
        for row in rows:
            if row["blocked_by"] is not None:
                retry_after = (row["blocked_by"] + window - now).total_seconds()
                raise RateLimited(
                    "Too many failed sign-in attempts; wait before trying again."
                    if row["scope"] == "account"
                    else "Too many failed sign-in attempts from this address; "
                    "wait before trying again.",
                    retry_after_seconds=int(retry_after) + 1,
                    limit=row["attempt_limit"],
                    window_seconds=policy.window_seconds,
                )
        ids = rows[0]["ids"] or []
        return LoginAttempt(
            account_key=account_key, address_key=address_key, attempt_ids=tuple(ids)
        )

    _RELEASE = """
        DELETE FROM login_attempt
        WHERE id = ANY($1::bigint[])
           OR ($2::text IS NOT NULL AND scope = 'account' AND subject = $2)
    """

    async def release(self, attempt: LoginAttempt, *, reset_account: bool) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._RELEASE,
                list(attempt.attempt_ids),
                attempt.account_key if reset_account else None,
            )
