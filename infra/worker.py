"""The background-job worker: jobs kept in PostgreSQL, run by every phr process
that starts a worker (`phr serve` does by default; `phr worker` runs one alone).

Enqueue (from a use case, inside its unit of work, so the job exists exactly when
the change commits; `services.jobs` is the `domain.jobs.JobQueue` port):

    async with self._unit_of_work() as uow:
        await self._messages.add(...)
        await self._jobs.enqueue("mail.send", {"messageId": str(message_id)},
                                 dedupe_key=f"mail.send:{message_id}")
        await uow.commit()

`payload` is a JSON object; `run_at` delays the job; a `dedupe_key` already used
enqueues nothing (finished jobs keep their key for 7 days).

Register a handler (in `infra/background_jobs.py`, `build_worker`):

    async def send_mail(job: Job) -> None:        # domain.jobs.Job
        await mailer.deliver(UUID(job.payload["messageId"]))

    worker.register("mail.send", send_mail)                      # one-off jobs by kind
    worker.every("uploads.purge", timedelta(minutes=10), purge)   # periodic, no argument

How a job runs: the worker claims due jobs with FOR UPDATE SKIP LOCKED and a lease
(`lease`, default 5 minutes); the handler runs inside a transaction the worker opens,
bound to the task, so repository calls made through `Database.transaction()` (and
`PgJoinedUnitOfWork`) join it, and the job is marked done in that same transaction:
such effects happen once even if the process dies mid-job (the lease expires, the
job runs again, the first run's transaction never committed). A handler that acts
outside that transaction (its own unit of work, an SMTP server, a push service)
must be idempotent: it may run again after a crash. A handler that raises is
retried with exponential backoff and jitter (5 s doubling, at most 1 h) up to
`max_attempts` (10), then left failed (failed_at, last_error) for an operator.
While a handler runs, its worker renews the lease every third of it, so a long
job is not claimed again while its process lives; the lease is how soon a job
whose process died runs again.
A job's transaction, once it has written something, holds back the audit
sequencer's horizon (events committed after it started are sealed only after it
ends): do slow outside work (SMTP, push) before the handler's first write.

Woken jobs (`on_wake`) run in every process with a worker as soon as a
transaction that called `pg_notify('phr_job', <name>)` commits, and at least
every `sweep` in case a notice was missed (a worker that was down) or work fell
due later (retries): for queues that keep their own claims, like the push
outbox, whose handler is safe to run in several processes at once.

    worker.on_wake("notifications.deliver", deliver, sweep=timedelta(seconds=5))

Periodic jobs (`every`) run once per occurrence per deployment, however many
processes run workers: a process runs an occurrence only after moving the
`job_schedule` row's next_run_at forward (one winner) and while holding the name's
session advisory lock (never two runs at once, even when one outlasts its interval).
A failed periodic run is logged and simply runs again at the next occurrence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from domain.jobs import Job
from infra.outages import JOBS_WAIT, ServiceUnavailable
from infra.pg.database import Database
from infra.pg.jobs import JOB_CHANNEL, PgJobStore

log = logging.getLogger("phr.worker")

JobHandler = Callable[[Job], Awaitable[object]]
PeriodicHandler = Callable[[], Awaitable[object]]

DEFAULT_LEASE = timedelta(minutes=5)
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0


def retry_delay(attempt: int, *, base: float = BACKOFF_BASE_SECONDS) -> timedelta:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1),
    capped, so jobs that failed together do not all come back together."""
    ceiling = min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempt - 1))
    return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 (jitter)


@dataclass(frozen=True)
class _Registration:
    handler: JobHandler
    lease: timedelta
    # The backing service the handler reports ServiceUnavailable for (its
    # outage ends with the first job of this kind that succeeds).
    service: str | None


@dataclass
class _Woken:
    name: str
    sweep: timedelta
    handler: PeriodicHandler
    wake: asyncio.Event


@dataclass(frozen=True)
class _Periodic:
    name: str
    interval: timedelta
    handler: PeriodicHandler

    @property
    def lock_key(self) -> str:
        return f"phr.job_schedule:{self.name}"


class LeaseLost(Exception):
    """The job's lease expired and another run claimed it: this run's work is
    rolled back."""


class Worker:
    def __init__(
        self,
        database: Database,
        *,
        concurrency: int = 4,
        poll_seconds: float = 1.0,
        tick_seconds: float = 0.25,
        retry_base_seconds: float = BACKOFF_BASE_SECONDS,
    ):
        self._database = database
        self._store = PgJobStore(database)
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._tick_seconds = tick_seconds
        self._retry_base = retry_base_seconds
        self._handlers: dict[str, _Registration] = {}
        self._periodic: dict[str, _Periodic] = {}
        self._woken: dict[str, _Woken] = {}
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._running: set[asyncio.Task] = set()
        self._lock_conn: asyncpg.Connection | None = None
        self._lock_guard = asyncio.Lock()

    def register(
        self,
        kind: str,
        handler: JobHandler,
        *,
        lease: timedelta = DEFAULT_LEASE,
        service: str | None = None,
    ) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = _Registration(handler, lease, service)

    def every(self, name: str, interval: timedelta | float, handler: PeriodicHandler) -> None:
        if name in self._periodic:
            raise ValueError(f"a periodic job named {name!r} is already registered")
        if not isinstance(interval, timedelta):
            interval = timedelta(seconds=interval)
        self._periodic[name] = _Periodic(name, interval, handler)

    def on_wake(self, name: str, handler: PeriodicHandler, *, sweep: timedelta | float) -> None:
        if name in self._woken or name in self._periodic:
            raise ValueError(f"a job named {name!r} is already registered")
        if not isinstance(sweep, timedelta):
            sweep = timedelta(seconds=sweep)
        self._woken[name] = _Woken(name, sweep, handler, asyncio.Event())

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    # Lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._stopping.clear()
        for periodic in self._periodic.values():
            await self._store.ensure_schedule(periodic.name)
        with contextlib.suppress(Exception):
            await self._lock_connection()
        self._tasks = [asyncio.create_task(self._claim_loop(), name="phr-worker-claim")]
        self._tasks += [
            asyncio.create_task(self._periodic_loop(p), name=f"phr-worker-{p.name}")
            for p in self._periodic.values()
        ]
        self._tasks += [
            asyncio.create_task(self._woken_loop(w), name=f"phr-worker-{w.name}")
            for w in self._woken.values()
        ]
        log.info(
            "worker started",
            extra={
                "worker": self.name,
                "kinds": self.kinds,
                "periodic": sorted(self._periodic),
                "woken": sorted(self._woken),
            },
        )

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stops claiming; jobs and periodic runs in flight get `grace_seconds` to
        finish, then are cancelled (their transactions roll back, their leases
        expire, and they run again elsewhere)."""
        self._stopping.set()
        self._wake.set()
        everything = [*self._tasks, *self._running]
        if everything:
            _, pending = await asyncio.wait(everything, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks = []
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                await self._lock_conn.close()
            self._lock_conn = None
        log.info("worker stopped", extra={"worker": self.name})

    async def run_until_stopped(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # One-off jobs --------------------------------------------------------------
    async def run_pending(self) -> int:
        """Claims and runs due jobs until none is left; returns how many ran. For
        tests and for draining before a shutdown; the claim loop does the same."""
        ran = 0
        while True:
            jobs = await self._claim(self._concurrency)
            if not jobs:
                return ran
            await asyncio.gather(*(self._run(job) for job in jobs))
            ran += len(jobs)

    async def _claim(self, limit: int) -> list[Job]:
        if not self._handlers or limit <= 0:
            return []
        leases = {kind: r.lease for kind, r in self._handlers.items()}
        return await self._store.claim(leases, limit, self.name)

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                free = self._concurrency - len(self._running)
                jobs = await self._claim(free) if free > 0 else []
            except Exception as exc:
                self._loop_failed("claiming jobs failed", exc, {"worker": self.name})
                jobs = []
            for job in jobs:
                task = asyncio.create_task(self._run(job), name=f"phr-job-{job.id}")
                self._running.add(task)
                task.add_done_callback(self._job_finished)
            if jobs and len(jobs) == free:
                continue  # more may be due
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    def _job_finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _run(self, job: Job) -> None:
        registration = self._handlers[job.kind]
        extra = {"worker": self.name, "jobId": job.id, "kind": job.kind, "attempt": job.attempt}
        try:
            async with self._database.transaction() as conn:
                async with self._lease_kept(job, registration.lease):
                    await registration.handler(job)
                if not await self._store.complete(conn, job, self.name):
                    raise LeaseLost(f"job {job.id} was claimed again before it finished")
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            log.warning("job lease lost; its work was rolled back", extra=extra)
            return
        except Exception as exc:
            delay = retry_delay(job.attempt, base=self._retry_base)
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ServiceUnavailable) and exc.__cause__ is not None:
                # What the service said: kept with the job, and the outage's detail.
                error += f" ({type(exc.__cause__).__name__}: {exc.__cause__})"
            try:
                gave_up = await self._store.retry(job, self.name, error, delay)
            except Exception:
                log.exception("recording a job failure failed", extra=extra)
                return
            if gave_up:
                log.error("job failed for the last time", exc_info=exc, extra=extra)
            elif isinstance(exc, ServiceUnavailable):
                self._database.outages.failed(exc.service, exc.reason, error, meaning=JOBS_WAIT)
            else:
                log.warning(
                    "job failed; retrying",
                    exc_info=exc,
                    extra={**extra, "retryInSeconds": round(delay.total_seconds(), 1)},
                )
            return
        if registration.service is not None:
            self._database.outages.recovered(registration.service)
        log.debug("job done", extra=extra)

    @contextlib.asynccontextmanager
    async def _lease_kept(self, job: Job, lease: timedelta):
        """Renews the job's lease while its handler runs (a third of the lease at a
        time), so a long job that is alive is not claimed again; if the process
        dies the renewals stop and the lease runs out as before. Stopped before
        the handler's transaction marks the job done (that holds the row)."""
        beat = asyncio.create_task(self._renew_lease(job, lease), name=f"phr-lease-{job.id}")
        try:
            yield
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _renew_lease(self, job: Job, lease: timedelta) -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                kept = await self._store.renew_lease(job, self.name, lease)
            except Exception as exc:
                self._loop_failed("renewing a job lease failed", exc, {"jobId": job.id})
                continue
            if not kept:
                # Claimed elsewhere after all: the final fence rolls this run back.
                return

    # Periodic jobs -------------------------------------------------------------
    async def run_periodic(self, name: str, *, force: bool = False) -> bool:
        """Runs one occurrence of `name` if it is due (or `force`) and no other
        process is running it; returns whether it ran here."""
        periodic = self._periodic[name]
        if not force and not await self._store.claim_occurrence(name, periodic.interval, self.name):
            return False
        if not await self._advisory(periodic, "pg_try_advisory_lock"):
            return False
        error: str | None = None
        try:
            await periodic.handler()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            # During a database outage: the outage's one line, not a traceback per turn.
            self._loop_failed("periodic job failed", exc, {"worker": self.name, "periodic": name})
        finally:
            await self._advisory(periodic, "pg_advisory_unlock")
        with contextlib.suppress(Exception):
            await self._store.finish_occurrence(name, error)
        return True

    def _loop_failed(self, message: str, exc: Exception, extra: dict) -> None:
        """A database outage is one line for the whole outage (the pool's outage
        log), not a traceback per loop turn; anything else is logged in full."""
        from infra.pg.database import unavailable_reason

        reason = unavailable_reason(exc)
        if reason is not None:
            self._database.outages.failed("database", reason, f"{type(exc).__name__}: {exc}")
            return
        log.error(message, exc_info=exc, extra=extra)

    async def _periodic_loop(self, periodic: _Periodic) -> None:
        pause = min(self._tick_seconds, periodic.interval.total_seconds())
        while not self._stopping.is_set():
            try:
                await self.run_periodic(periodic.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._loop_failed(
                    "periodic job could not start",
                    exc,
                    {"worker": self.name, "periodic": periodic.name},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def _woken_loop(self, woken: _Woken) -> None:
        while not self._stopping.is_set():
            # Cleared before the run: a notice that arrives during it runs it again.
            woken.wake.clear()
            try:
                await woken.handler()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._loop_failed(
                    "woken job failed", exc, {"worker": self.name, "woken": woken.name}
                )
            # Notices come through the listening connection: back after it dropped.
            with contextlib.suppress(Exception):
                async with self._lock_guard:
                    await self._lock_connection()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken_or_stopping(woken), woken.sweep.total_seconds())

    async def _woken_or_stopping(self, woken: _Woken) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        wake = asyncio.ensure_future(woken.wake.wait())
        try:
            await asyncio.wait([stopping, wake], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            wake.cancel()

    async def _lock_connection(self) -> asyncpg.Connection:
        """A connection of the worker's own, outside the pool: session advisory
        locks live as long as it does (a process that dies releases them), and it
        listens for enqueued jobs."""
        if self._lock_conn is None or self._lock_conn.is_closed():
            conn = await asyncpg.connect(
                self._database.dsn, server_settings={"application_name": "phr-worker"}
            )
            await conn.add_listener(JOB_CHANNEL, self._on_enqueued)
            self._lock_conn = conn
        return self._lock_conn

    def _on_enqueued(self, conn: object, pid: int, channel: str, payload: str) -> None:
        woken = self._woken.get(payload)
        if woken is not None:
            woken.wake.set()
        else:
            self._wake.set()

    async def _advisory(self, periodic: _Periodic, function: str) -> bool:
        async with self._lock_guard:
            conn = await self._lock_connection()
            try:
                return bool(
                    await conn.fetchval(
                        f"SELECT {function}(hashtextextended($1, 0))", periodic.lock_key
                    )
                )
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                # The connection went (and its locks with it): the next tick reconnects.
                with contextlib.suppress(Exception):
                    await conn.close()
                self._lock_conn = None
                if function == "pg_advisory_unlock":
                    return False
                raise
