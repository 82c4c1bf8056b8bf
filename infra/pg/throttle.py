"""The throttle counted in PostgreSQL, so every API process sees the same counts.

Each key is locked (a transaction-scoped advisory lock, keys in sorted order, so no
two attempts wait on each other in a cycle), then counted, then the attempt is
recorded: parallel attempts on one key queue on its lock and each sees the ones
before it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.errors import RateLimited
from domain.throttle import Gate, KeyCount, ThrottleKey, ThrottleTicket
from infra.pg.database import Database

_PURGE_PROBABILITY = 0.01
# No window is longer than a day; rows older than that are no key's business.
_PURGE_AFTER = timedelta(days=1)


class PgThrottle:
    def __init__(self, database: Database):
        self._database = database

    # One statement; the names come sorted and unnest yields them in order.
    _LOCK = """
        SELECT pg_advisory_xact_lock(hashtextextended('phr.throttle:' || name, 0))
        FROM unnest($1::text[]) WITH ORDINALITY AS k(name, i)
        ORDER BY i
    """
    # Per key: attempts inside its window, the latest, and the limit-th most recent
    # one (while there is one, the key is at its limit until that one leaves).
    _COUNT = """
        SELECT k.i,
               (SELECT count(*) FROM throttle_attempt a
                WHERE a.scope = k.scope AND a.subject = k.subject
                  AND a.attempted_at > k.since) AS attempts,
               (SELECT max(a.attempted_at) FROM throttle_attempt a
                WHERE a.scope = k.scope AND a.subject = k.subject
                  AND a.attempted_at > k.since) AS latest,
               (SELECT a.attempted_at FROM throttle_attempt a
                WHERE a.scope = k.scope AND a.subject = k.subject AND a.attempted_at > k.since
                ORDER BY a.attempted_at DESC
                OFFSET k.attempt_limit - 1 LIMIT 1) AS blocked_by
        FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[])
             WITH ORDINALITY AS k(scope, subject, since, attempt_limit, i)
        ORDER BY k.i
    """
    _RECORD = """
        INSERT INTO throttle_attempt (scope, subject, attempted_at)
        SELECT k.scope, k.subject, $3 FROM unnest($1::text[], $2::text[]) AS k(scope, subject)
        RETURNING id
    """
    _PURGE = """
        DELETE FROM throttle_attempt WHERE id IN (
            SELECT id FROM throttle_attempt WHERE attempted_at <= $1 LIMIT 1000)
    """

    async def admit(
        self, keys: Sequence[ThrottleKey], *, now: datetime, gate: Gate | None = None
    ) -> ThrottleTicket:
        async with self._database.transaction() as conn:
            await conn.execute(self._LOCK, sorted({f"{k.scope}:{k.subject}" for k in keys}))
            rows = await conn.fetch(
                self._COUNT,
                [k.scope for k in keys],
                [k.subject for k in keys],
                [now - timedelta(seconds=k.window_seconds) for k in keys],
                [k.limit for k in keys],
            )
            for key, row in zip(keys, rows, strict=True):
                if row["blocked_by"] is not None:
                    window = timedelta(seconds=key.window_seconds)
                    raise RateLimited(
                        "Too many attempts; wait before trying again.",
                        retry_after_seconds=int((row["blocked_by"] + window - now).total_seconds())
                        + 1,
                        limit=key.limit,
                        window_seconds=key.window_seconds,
                    )
            if gate is not None:
                gate(
                    {
                        (k.scope, k.subject): KeyCount(row["attempts"], row["latest"])
                        for k, row in zip(keys, rows, strict=True)
                    }
                )
            recording = [k for k in keys if k.record]
            ids = await conn.fetch(
                self._RECORD,
                [k.scope for k in recording],
                [k.subject for k in recording],
                now,
            )
            if random.random() < _PURGE_PROBABILITY:  # noqa: S311 - not security relevant
                await conn.execute(self._PURGE, now - _PURGE_AFTER)
        return ThrottleTicket(attempt_ids=tuple(row["id"] for row in ids))

    _FORGET = """
        DELETE FROM throttle_attempt a
        WHERE a.id = ANY($1::bigint[])
           OR (a.scope, a.subject) IN (SELECT * FROM unnest($2::text[], $3::text[]))
    """

    async def forget(
        self, ticket: ThrottleTicket, *, clear: Sequence[tuple[str, str]] = ()
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._FORGET,
                list(ticket.attempt_ids),
                [scope for scope, _ in clear],
                [subject for _, subject in clear],
            )
