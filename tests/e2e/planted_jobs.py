"""Jobs the worker tests plant in `phr worker` / `phr serve` processes through
PHR_WORKER_MODULES. Their effects go to tables the test creates."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from domain.jobs import Job

# Short, so that a job whose process was killed runs again within the test.
EFFECT_LEASE = timedelta(seconds=2)
OVERLAP_INTERVAL = timedelta(seconds=0.2)
OVERLAP_RUN_SECONDS = 0.35


def register_jobs(worker, services) -> None:
    database = services.database

    async def effect(job: Job) -> None:
        # Written in the job's transaction: it commits only with the job's completion.
        async with database.transaction() as conn:
            await conn.execute(
                "INSERT INTO worker_effect (job_id, attempt, pid) VALUES ($1, $2, $3)",
                job.id,
                job.attempt,
                os.getpid(),
            )
        marker = job.payload.get("stallFirstAttempt")
        if marker and job.attempt == 1:
            Path(marker).write_text(str(os.getpid()))
            await asyncio.sleep(3600)  # killed here, between claiming and finishing

    async def overlap() -> None:
        async with database.transaction() as conn:
            run_id = await conn.fetchval(
                "INSERT INTO periodic_run (pid, started_at) VALUES ($1, clock_timestamp()) "
                "RETURNING id",
                os.getpid(),
            )
        await asyncio.sleep(OVERLAP_RUN_SECONDS)
        async with database.transaction() as conn:
            await conn.execute(
                "UPDATE periodic_run SET finished_at = clock_timestamp() WHERE id = $1", run_id
            )

    worker.register("test.effect", effect, lease=EFFECT_LEASE)
    worker.every("test.overlap", OVERLAP_INTERVAL, overlap)
