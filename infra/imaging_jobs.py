"""Imaging work as background jobs (infra/worker.py): a CD's import and the
previews of the series it touched. The use case enqueues inside its own unit of
work, so a job exists exactly when the import row or the new instances commit.

Handlers act in units of work of their own (and on the blob store), so they are
idempotent: a rerun finds instances already kept (duplicates, nothing changes)
and a finished import untouched. An import whose handler keeps failing is marked
`failed` on its last attempt, so the patient never watches `processing` forever."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from domain.jobs import Job, JobQueue

log = logging.getLogger("phr.imaging")

IMPORT_JOB = "imaging.import"
PREVIEWS_JOB = "imaging.previews"
IMPORT_ATTEMPTS = 3
# A CD of a few thousand instances takes minutes on a small machine.
LEASE = timedelta(minutes=30)


class QueuedImagingJobs:
    def __init__(self, queue: JobQueue):
        self._queue = queue

    async def import_archive(self, patient_id: UUID, upload_id: UUID) -> None:
        await self._queue.enqueue(
            IMPORT_JOB,
            {"patientId": str(patient_id), "uploadId": str(upload_id)},
            dedupe_key=f"{IMPORT_JOB}:{upload_id}",
        )

    async def make_previews(self, patient_id: UUID, series_uids: list[str]) -> None:
        await self._queue.enqueue(
            PREVIEWS_JOB, {"patientId": str(patient_id), "seriesUids": list(series_uids)}
        )


def register_imaging_jobs(worker: Any, services: Any) -> None:
    async def run_import(job: Job) -> None:
        patient_id = UUID(job.payload["patientId"])
        upload_id = UUID(job.payload["uploadId"])
        try:
            await services.imaging_import.run_archive(patient_id, upload_id)
        except Exception as exc:
            if job.attempt < IMPORT_ATTEMPTS:
                raise
            log.error("imaging import failed", extra={"error": type(exc).__name__})
            await services.imaging_import.fail_import(patient_id, upload_id, "The import failed.")

    async def run_previews(job: Job) -> None:
        await services.imaging_import.make_previews(
            UUID(job.payload["patientId"]), [str(uid) for uid in job.payload["seriesUids"]]
        )

    worker.register(IMPORT_JOB, run_import, lease=LEASE)
    worker.register(PREVIEWS_JOB, run_previews, lease=LEASE)
