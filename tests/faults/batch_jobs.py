"""A batch job the worker-kill fault test plants in `phr worker` processes through
PHR_WORKER_MODULES. Each run records that it started (a line in a file: what a
crash cannot take back) and writes its effect in the job's transaction (a row
that commits only with the job's completion), then takes a while, so a kill
finds several jobs of the batch claimed and unfinished; a job marked `stall`
takes far longer in a worker started with STALL_ENV set (the one to be killed),
so the kill surely finds it mid-run."""

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
STALL_SECONDS = 60.0
STALL_ENV = "PHR_TEST_BATCH_STALL"


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
        stall = job.payload.get("stall") and os.environ.get(STALL_ENV) == "1"
        await asyncio.sleep(STALL_SECONDS if stall else RUN_SECONDS)

    worker.register(KIND, batch_item, lease=LEASE)
