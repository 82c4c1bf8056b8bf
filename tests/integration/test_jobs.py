"""The job queue and worker against a real PostgreSQL: enqueue commits with the
unit of work it joins, the same occurrence is enqueued once, failures come back
later with growing delays and finally stop, and a periodic job already running
elsewhere is not started again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from infra.pg.database import Database
from infra.worker import Worker, retry_delay


async def test_a_job_enqueued_in_a_rolled_back_unit_of_work_never_runs(services, superuser_conn):
    ran: list[dict] = []
    worker = Worker(services.database)

    async def handler(job) -> None:
        ran.append(job.payload)

    worker.register("test.rolled_back", handler)
    async with services.unit_of_work():
        await services.jobs.enqueue("test.rolled_back", {"n": 1})
        # no commit: rolled back on exit
    async with services.unit_of_work() as uow:
        assert await services.jobs.enqueue("test.rolled_back", {"n": 2}, dedupe_key="tx-2")
        assert not await services.jobs.enqueue("test.rolled_back", {"n": 3}, dedupe_key="tx-2")
        await uow.commit()
    assert await worker.run_pending() == 1
    assert ran == [{"n": 2}]
    # Done, and its key still refuses the same occurrence.
    assert not await services.jobs.enqueue("test.rolled_back", {"n": 4}, dedupe_key="tx-2")
    assert await worker.run_pending() == 0


async def test_a_failing_job_is_retried_with_backoff_then_given_up(services, superuser_conn):
    attempts: list[int] = []
    worker = Worker(services.database, retry_base_seconds=0.001)

    async def flaky(job) -> None:
        attempts.append(job.attempt)
        raise RuntimeError("the mail server said no")

    worker.register("test.flaky", flaky)
    async with services.unit_of_work() as uow:
        await services.jobs.enqueue("test.flaky", {}, dedupe_key="flaky")
        await uow.commit()
    await superuser_conn.execute("UPDATE job SET max_attempts = 3 WHERE dedupe_key = 'flaky'")
    for _ in range(20):
        await worker.run_pending()
        row = await superuser_conn.fetchrow(
            "SELECT attempts, failed_at, last_error FROM job WHERE dedupe_key = 'flaky'"
        )
        if row["failed_at"] is not None:
            break
        await asyncio.sleep(0.01)
    assert attempts == [1, 2, 3]
    assert row["attempts"] == 3 and "the mail server said no" in row["last_error"]
    assert await worker.run_pending() == 0


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap():
    for attempt in range(1, 8):
        ceiling = 5 * 2 ** (attempt - 1)
        delays = {retry_delay(attempt).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1
    assert retry_delay(40).total_seconds() <= 3600


async def test_a_periodic_job_running_in_one_worker_is_not_started_by_another(services):
    second_database = Database(services.database.dsn)
    await second_database.open()
    started = asyncio.Event()
    release = asyncio.Event()
    runs: list[str] = []

    def periodic(name: str):
        async def run() -> None:
            runs.append(name)
            started.set()
            await release.wait()

        return run

    one, two = Worker(services.database), Worker(second_database)
    one.every("test.exclusive", timedelta(milliseconds=1), periodic("one"))
    two.every("test.exclusive", timedelta(milliseconds=1), periodic("two"))
    try:
        for worker in (one, two):
            await worker._store.ensure_schedule("test.exclusive")
        first = asyncio.create_task(one.run_periodic("test.exclusive"))
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.01)
        assert await two.run_periodic("test.exclusive") is False
        assert await two.run_periodic("test.exclusive", force=True) is False
        release.set()
        assert await first is True
        await asyncio.sleep(0.01)
        assert await two.run_periodic("test.exclusive") is True
        assert runs == ["one", "two"]
    finally:
        release.set()
        await one.stop()
        await two.stop()
        await second_database.close()


async def test_a_job_that_outlives_its_lease_while_alive_is_not_run_again(services, superuser_conn):
    """The running worker renews the lease; a second worker polling all along
    never claims the job, which finishes once."""
    runs: list[str] = []
    release = asyncio.Event()
    lease = timedelta(milliseconds=600)

    def slow(name: str):
        async def handler(job) -> None:
            runs.append(name)
            await release.wait()

        return handler

    one = Worker(services.database, concurrency=1)
    two = Worker(services.database, concurrency=1)
    one.register("test.long", slow("one"), lease=lease)
    two.register("test.long", slow("two"), lease=lease)
    async with services.unit_of_work() as uow:
        await services.jobs.enqueue("test.long", {}, dedupe_key="long-1")
        await uow.commit()
    first = asyncio.create_task(one.run_pending())
    try:
        for _ in range(100):
            if runs:
                break
            await asyncio.sleep(0.02)
        # Three leases long, the second worker keeps asking for due work.
        for _ in range(18):
            # (a claimed job would hang on `release`: the timeout fails the test)
            assert await asyncio.wait_for(two.run_pending(), 5) == 0
            await asyncio.sleep(0.1)
        release.set()
        assert await first == 1
    finally:
        release.set()
    assert runs == ["one"]
    row = await superuser_conn.fetchrow(
        "SELECT attempts, done_at FROM job WHERE dedupe_key = 'long-1'"
    )
    assert row["attempts"] == 1 and row["done_at"] is not None
