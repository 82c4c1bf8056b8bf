"""The job table: enqueue inside the caller's transaction, claim with a lease,
finish or retry. Used by `infra.worker`; see its docstring for usage."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from domain.jobs import Job
from infra.pg.database import Database

# Workers waiting for work LISTEN on this channel; an enqueue notifies it when its
# transaction commits, so a job runs without waiting for the next poll.
JOB_CHANNEL = "phr_job"


class PgJobQueue:
    """The `JobQueue` port. `enqueue` joins the transaction open in this task (the
    unit of work's), so the job commits or rolls back with the change it follows."""

    def __init__(self, database: Database):
        self._database = database

    _ENQUEUE = """
        WITH added AS (
            INSERT INTO job (kind, payload, run_at, dedupe_key)
            VALUES ($1, $2, coalesce($3, now()), $4)
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id
        )
        SELECT count(*) > 0 AS added, max(pg_notify($5, $1)::text) AS notified FROM added
    """

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        run_at: datetime | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._ENQUEUE, kind, payload, run_at, dedupe_key, JOB_CHANNEL)
        return bool(row["added"])


class PgJobStore:
    """What the worker does to the job and job_schedule tables. Every call runs in
    a short transaction of its own (autocommit): a claim is a lease, not a lock
    held while the handler runs."""

    def __init__(self, database: Database):
        self._database = database

    _CLAIM = """
        WITH due AS (
            SELECT id FROM job
            WHERE done_at IS NULL AND failed_at IS NULL AND run_at <= now()
              AND (locked_until IS NULL OR locked_until < now())
              AND kind = ANY($1::text[])
            ORDER BY run_at, id
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE job SET attempts = job.attempts + 1,
                       locked_by = $3,
                       locked_until = now() + make_interval(
                           secs => ($4::float8[])[array_position($1::text[], job.kind)])
        FROM due WHERE job.id = due.id
        RETURNING job.id, job.kind, job.payload, job.attempts
    """

    async def claim(self, leases: dict[str, timedelta], limit: int, worker: str) -> list[Job]:
        """Up to `limit` due jobs of the given kinds, each leased for its kind's lease."""
        kinds = list(leases)
        seconds = [leases[kind].total_seconds() for kind in kinds]
        async with self._database.pool.acquire() as conn:
            rows = await conn.fetch(self._CLAIM, kinds, limit, worker, seconds)
        return [
            Job(id=row["id"], kind=row["kind"], payload=row["payload"], attempt=row["attempts"])
            for row in rows
        ]

    # Fenced by (locked_by, attempts): a run whose lease expired and was claimed
    # again elsewhere cannot mark the job done, so its transaction rolls back.
    _COMPLETE = """
        UPDATE job SET done_at = now(), locked_until = NULL, last_error = NULL
        WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND done_at IS NULL
        RETURNING true
    """

    async def complete(self, conn: asyncpg.Connection, job: Job, worker: str) -> bool:
        """Marks the job done on `conn`, inside the handler's transaction."""
        return bool(await conn.fetchval(self._COMPLETE, job.id, worker, job.attempt))

    _RENEW = """
        UPDATE job SET locked_until = now() + make_interval(secs => $4)
        WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND done_at IS NULL
        RETURNING true
    """

    async def renew_lease(self, job: Job, worker: str, lease: timedelta) -> bool:
        """Extends a lease this worker still holds; False once it has run out."""
        async with self._database.pool.acquire() as conn:
            return bool(
                await conn.fetchval(self._RENEW, job.id, worker, job.attempt, lease.total_seconds())
            )

    _RETRY = """
        UPDATE job SET locked_until = NULL,
                       last_error = $4,
                       run_at = now() + make_interval(secs => $5),
                       failed_at = CASE WHEN attempts >= max_attempts THEN now() END
        WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND done_at IS NULL
        RETURNING failed_at IS NOT NULL AS gave_up
    """

    async def retry(self, job: Job, worker: str, error: str, delay: timedelta) -> bool | None:
        """Schedules the next attempt; returns whether the job gave up (its last
        attempt failed), None when the lease had already gone elsewhere."""
        async with self._database.pool.acquire() as conn:
            return await conn.fetchval(
                self._RETRY, job.id, worker, job.attempt, error[:2000], delay.total_seconds()
            )

    _PRUNE = """
        DELETE FROM job WHERE id IN (
            SELECT id FROM job
            WHERE (done_at IS NOT NULL OR failed_at IS NOT NULL)
              AND coalesce(done_at, failed_at) < $1
            LIMIT $2
        )
    """

    async def prune_finished(self, before: datetime, limit: int = 5000) -> int:
        async with self._database.pool.acquire() as conn:
            status = await conn.execute(self._PRUNE, before, limit)
        return int(status.split()[-1])

    # Periodic jobs.
    async def ensure_schedule(self, name: str) -> None:
        async with self._database.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO job_schedule (name, next_run_at) VALUES ($1, now()) "
                "ON CONFLICT (name) DO NOTHING",
                name,
            )

    _CLAIM_OCCURRENCE = """
        UPDATE job_schedule
        SET next_run_at = now() + make_interval(secs => $2),
            last_started_at = now(), last_run_by = $3
        WHERE name = $1 AND next_run_at <= now()
        RETURNING true
    """

    async def claim_occurrence(self, name: str, interval: timedelta, worker: str) -> bool:
        """Moves the schedule forward if it is due: one process wins each occurrence."""
        async with self._database.pool.acquire() as conn:
            return bool(
                await conn.fetchval(self._CLAIM_OCCURRENCE, name, interval.total_seconds(), worker)
            )

    async def finish_occurrence(self, name: str, error: str | None) -> None:
        async with self._database.pool.acquire() as conn:
            await conn.execute(
                "UPDATE job_schedule SET last_finished_at = now(), last_error = $2 WHERE name = $1",
                name,
                error[:2000] if error else None,
            )
