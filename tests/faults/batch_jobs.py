"""A batch job the worker-kill fault test plants in `phr worker` processes through
PHR_WORKER_MODULES. Each run records that it started (a line in a file: what a
crash cannot take back) and writes its effect in the job's transaction (a row
that commits only with the job's completion), then takes a while, so a kill
finds several jobs of the batch claimed and unfinished."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from domain.jobs import Job

KIND = "fault.batch"
# Short, so that the jobs a killed worker held run again within the test.
LEASE = timedelta(seconds=2)
RUN_SECONDS = 0.4


def register_jobs(worker, services) -> None:
    database = services.database

    async def batch_item(job: Job) -> None:
        with Path(job.payload["startedLog"]).open("a") as log:
            log.write(f"{job.id} {job.attempt} {os.getpid()}\n")
        async with database.transaction() as conn:
            await conn.execute(
                "INSERT INTO fault_batch_effect (job_id, attempt, pid) VALUES ($1, $2, $3)",
                job.id,
                job.attempt,
                os.getpid(),
            )
        await asyncio.sleep(RUN_SECONDS)

    worker.register(KIND, batch_item, lease=LEASE)
