"""`phr worker` processes beside `phr serve` on the embedded default: a job whose
worker is killed mid-run runs again and takes effect once; periodic jobs never
run twice at the same time however many processes run them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from infra.embedded_postgres import EmbeddedPostgres
from infra.pg.database import Database
from infra.pg.jobs import PgJobQueue
from tests.e2e.service import phr_worker, running_service, service_env

PLANTED = {"PHR_WORKER_MODULES": "tests.e2e.planted_jobs"}


@contextlib.contextmanager
def worker_process(data_dir: Path, name: str) -> Iterator[subprocess.Popen]:
    log_path = data_dir.parent / f"{name}.log"
    with phr_worker(service_env(data_dir, 0, PLANTED), log_path) as process:
        yield process


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def owner_dsn(data_dir: Path) -> str:
    # The running server's (serve started it): start() only finds it.
    return EmbeddedPostgres(data_dir).start()


async def sql(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        if not args and ";" in query:
            return await conn.execute(query)
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def test_a_job_whose_worker_is_killed_mid_run_runs_again_and_takes_effect_once(serve_data_dir):
    data_dir = serve_data_dir
    with running_service(data_dir, env={"PHR_WORKER": "off"}):
        dsn = owner_dsn(data_dir)
        asyncio.run(
            sql(
                dsn,
                "CREATE TABLE worker_effect (job_id bigint, attempt int, pid int);"
                "GRANT SELECT, INSERT ON worker_effect TO phr_app",
            )
        )
        marker = data_dir.parent / "claimed"

        async def enqueue() -> int:
            database = Database(dsn)
            await database.open()
            try:
                async with database.transaction():
                    added = await PgJobQueue(database).enqueue(
                        "test.effect",
                        {"stallFirstAttempt": str(marker)},
                        dedupe_key="effect-once",
                    )
                    assert added
                # The same occurrence again is not a second job.
                assert not await PgJobQueue(database).enqueue(
                    "test.effect", {}, dedupe_key="effect-once"
                )
                return (await sql(dsn, "SELECT id FROM job WHERE dedupe_key = 'effect-once'"))[0][
                    "id"
                ]
            finally:
                await database.close()

        job_id = asyncio.run(enqueue())

        with worker_process(data_dir, "worker-a") as first:
            wait_for(marker.exists, 60, "the first worker to claim the job")
            first.kill()  # SIGKILL: no shutdown, no rollback sent, lease left held
            first.wait()
        job = asyncio.run(sql(dsn, "SELECT attempts, done_at FROM job WHERE id = $1", job_id))[0]
        assert job["attempts"] == 1 and job["done_at"] is None
        assert asyncio.run(sql(dsn, "SELECT * FROM worker_effect")) == []

        with worker_process(data_dir, "worker-b"):

            def done() -> bool:
                rows = asyncio.run(sql(dsn, "SELECT done_at FROM job WHERE id = $1", job_id))
                return rows[0]["done_at"] is not None

            wait_for(done, 60, "the job to run again after its lease expired")
        effects = asyncio.run(sql(dsn, "SELECT job_id, attempt FROM worker_effect"))
        assert [(r["job_id"], r["attempt"]) for r in effects] == [(job_id, 2)]


def test_two_workers_beside_serve_never_run_a_periodic_job_twice_at_once(serve_data_dir):
    data_dir = serve_data_dir
    with running_service(data_dir, env=PLANTED):
        dsn = owner_dsn(data_dir)
        asyncio.run(
            sql(
                dsn,
                "CREATE TABLE periodic_run (id serial PRIMARY KEY, pid int,"
                " started_at timestamptz, finished_at timestamptz);"
                "GRANT SELECT, INSERT, UPDATE ON periodic_run TO phr_app;"
                "GRANT USAGE ON SEQUENCE periodic_run_id_seq TO phr_app",
            )
        )
        with worker_process(data_dir, "worker-1"), worker_process(data_dir, "worker-2"):
            wait_for(
                lambda: len(asyncio.run(sql(dsn, "SELECT DISTINCT pid FROM periodic_run"))) >= 3,
                90,
                "serve and both workers to have run the periodic job",
            )
            time.sleep(3)
        runs = asyncio.run(
            sql(
                dsn,
                "SELECT pid, started_at, finished_at FROM periodic_run "
                "WHERE finished_at IS NOT NULL ORDER BY started_at",
            )
        )
    assert len(runs) >= 5
    for earlier, later in itertools.pairwise(runs):
        assert later["started_at"] >= earlier["finished_at"], (earlier, later)
