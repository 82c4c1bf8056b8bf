"""Login throttling counted in PostgreSQL, so every API process sees the same counts.

Each attempt is written (and committed) before the password is checked and deleted
if it turns out not to be a failed guess; what is left inside the window are
failures plus attempts still being checked. The check and the insert for one key
run under a transaction-scoped advisory lock on that key, so parallel attempts on
one account cannot all slip under the limit."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from domain.errors import RateLimited
from domain.login_throttle import LoginAttempt, ThrottlePolicy
from infra.pg.database import Database

_PURGE_PROBABILITY = 0.01


class PgLoginThrottle:
    def __init__(self, database: Database, policy: ThrottlePolicy):
        self._database = database
        self._policy = policy

    @property
    def policy(self) -> ThrottlePolicy:
        return self._policy

    _LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended('phr.login:' || $1 || ':' || $2, 0))"
    # The limit-th most recent attempt in the window; if there is one, the key is
    # at its limit until that attempt leaves the window.
    _NTH_RECENT = """
        SELECT attempted_at FROM login_attempt
        WHERE scope = $1 AND subject = $2 AND attempted_at > $3
        ORDER BY attempted_at DESC
        OFFSET $4 LIMIT 1
    """
    _INSERT = """
        INSERT INTO login_attempt (scope, subject, attempted_at) VALUES ($1, $2, $3)
        RETURNING id
    """
    _FORGET_EXPIRED = """
        DELETE FROM login_attempt WHERE scope = $1 AND subject = $2 AND attempted_at <= $3
    """
    # Keys that never come back would keep their rows; sweep a bounded batch now and then.
    _PURGE = """
        DELETE FROM login_attempt WHERE id IN (
            SELECT id FROM login_attempt WHERE attempted_at <= $1 LIMIT 1000)
    """

    async def begin(self, *, account_key: str, address_key: str, now: datetime) -> LoginAttempt:
        window = timedelta(seconds=self._policy.window_seconds)
        since = now - window
        checks = (
            ("account", account_key, self._policy.account_failures),
            ("address", address_key, self._policy.address_failures),
        )
        ids: list[int] = []
        async with self._database.transaction() as conn:
            # Always in the same order (account, then address): no lock cycles.
            for scope, subject, _ in checks:
                await conn.execute(self._LOCK_KEY, scope, subject)
            for scope, subject, limit in checks:
                blocking = await conn.fetchval(self._NTH_RECENT, scope, subject, since, limit - 1)
                if blocking is not None:
                    retry_after = (blocking + window - now).total_seconds()
                    raise RateLimited(
                        "Too many failed sign-in attempts; wait before trying again."
                        if scope == "account"
                        else "Too many failed sign-in attempts from this address; "
                        "wait before trying again.",
                        retry_after_seconds=int(retry_after) + 1,
                        limit=limit,
                        window_seconds=self._policy.window_seconds,
                    )
            for scope, subject, _ in checks:
                await conn.execute(self._FORGET_EXPIRED, scope, subject, since)
                ids.append(await conn.fetchval(self._INSERT, scope, subject, now))
            if random.random() < _PURGE_PROBABILITY:  # noqa: S311 - not security relevant
                await conn.execute(self._PURGE, since)
        return LoginAttempt(
            account_key=account_key, address_key=address_key, attempt_ids=tuple(ids)
        )

    _RELEASE = "DELETE FROM login_attempt WHERE id = ANY($1::bigint[])"
    _RESET_ACCOUNT = "DELETE FROM login_attempt WHERE scope = 'account' AND subject = $1"

    async def release(self, attempt: LoginAttempt, *, reset_account: bool) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._RELEASE, list(attempt.attempt_ids))
            if reset_account:
                await conn.execute(self._RESET_ACCOUNT, attempt.account_key)
