"""A `phr worker` SIGKILLed in the middle of a batch, with several jobs claimed
and half done: after another worker starts, every job of the batch has taken
effect, and each exactly once (the killed runs' effects rolled back with their
transactions; their leases lapse and the jobs run again)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.pg.database import Database
from infra.pg.jobs import PgJobQueue
from tests.conftest import TEST_AUDIT_LOG_KEY, TEST_PUBLIC_URL
from tests.e2e.service import phr_worker
from tests.faults.batch_jobs import KIND, STALL_ENV
from tests.faults.waiting import eventually

BATCH = 24


@contextlib.contextmanager
def worker_process(
    dsn: str, data_dir: Path, log_path: Path, *, stall: bool = False
) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PHR_DATA_DIR": str(data_dir),
        "PHR_PUBLIC_URL": TEST_PUBLIC_URL,
        # The suite's audit log key: the worker's sequencer seals the run's one log.
        "PHR_AUDIT_LOG_KEY": TEST_AUDIT_LOG_KEY,
        "PHR_WORKER_MODULES": "tests.faults.batch_jobs",
        STALL_ENV: "1" if stall else "0",
    }
    with phr_worker(env, log_path) as process:
        yield process


@pytest.fixture
async def effect_table(superuser_conn):
    """Where the planted jobs write their effects; dropped after the test (the
    run's database is shared, and the schema tests read every table in it)."""
    await superuser_conn.execute(
        "CREATE TABLE fault_batch_effect (job_id bigint, attempt int, pid int);"
        "GRANT SELECT, INSERT ON fault_batch_effect TO phr_app"
    )
    try:
        yield
    finally:
        await superuser_conn.execute("DROP TABLE fault_batch_effect")


async def test_a_worker_killed_mid_batch_loses_nothing_and_does_nothing_twice(
    database_dsn, data_dir, superuser_conn, effect_table
):
    started_log = data_dir / "started.log"
    database = Database(database_dsn)
    await database.open()
    try:
        async with database.transaction():
            for n in range(BATCH):
                payload = {"startedLog": str(started_log), "n": n, "stall": n % 6 == 5}
                await PgJobQueue(database).enqueue(KIND, payload)
    finally:
        await database.close()
    job_ids = [
        r["id"]
        for r in await superuser_conn.fetch(
            "SELECT id FROM job WHERE kind = $1 AND payload->>'startedLog' = $2",
            KIND,
            str(started_log),
        )
    ]
    assert len(job_ids) == BATCH

    async def effects() -> list:
        return await superuser_conn.fetch(
            "SELECT job_id, attempt FROM fault_batch_effect WHERE job_id = ANY($1::bigint[])",
            job_ids,
        )

    async def claimed_unfinished() -> list:
        return await superuser_conn.fetch(
            "SELECT id, attempts FROM job WHERE id = ANY($1::bigint[]) "
            "AND done_at IS NULL AND locked_until > now()",
            job_ids,
        )

    log_a = data_dir.parent / "worker-a.log"
    with worker_process(database_dsn, data_dir, log_a, stall=True) as first:

        def started() -> dict[int, list[int]]:
            runs: dict[int, list[int]] = {}
            if started_log.exists():
                for line in started_log.read_text().splitlines():
                    job_id, attempt, _ = line.split()
                    runs.setdefault(int(job_id), []).append(int(attempt))
            return runs

        async def mid_batch() -> bool:
            claimed = {r["id"] for r in await claimed_unfinished()}
            running = claimed & set(started())  # a stalled one, or one in its run
            return len(await effects()) >= 6 and len(claimed) >= 2 and bool(running)

        await eventually(
            mid_batch,
            90,
            "the first worker half-way through the batch",
            context=lambda: log_a.read_text()[-3000:],
        )
        first.kill()  # SIGKILL: no shutdown, no rollback sent, leases left held
        first.wait()
    held = {r["id"] for r in await claimed_unfinished()}
    done_before = len(await effects())
    assert held and done_before < BATCH, (held, done_before)
    # Some were killed mid-run (they had started: the log says so), and none of the
    # held ones left an effect behind.
    assert held & set(started()), (held, started())
    assert not held & {r["job_id"] for r in await effects()}

    log_b = data_dir.parent / "worker-b.log"
    with worker_process(database_dsn, data_dir, log_b):

        async def all_done() -> bool:
            return await superuser_conn.fetchval(
                "SELECT bool_and(done_at IS NOT NULL) FROM job WHERE id = ANY($1::bigint[])",
                job_ids,
            )

        await eventually(
            all_done,
            90,
            "the batch finished by the second worker",
            context=lambda: log_b.read_text()[-3000:],
        )

    rows = await effects()
    per_job: dict[int, list[int]] = {}
    for row in rows:
        per_job.setdefault(row["job_id"], []).append(row["attempt"])
    assert sorted(per_job) == sorted(job_ids), "a job of the batch was lost"
    twice = {job: attempts for job, attempts in per_job.items() if len(attempts) != 1}
    assert not twice, f"done twice: {twice}"
    # The jobs held at the kill ran again: their one effect is their second attempt's.
    assert all(per_job[job] == [2] for job in held), {job: per_job[job] for job in held}
