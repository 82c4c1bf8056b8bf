"""Imaging jobs (CD imports, previews) run as tasks of the serving process.

This is the stand-in until the PostgreSQL job queue exists: the work runs off
the request, and the import's row says `processing` until it ends, but a
process that dies mid-import leaves that row `processing` (nothing half-kept is
visible: instances are added one transaction each, and the study record is
rebuilt at the end). `drain()` lets shutdown and tests wait for running work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any
from uuid import UUID

log = logging.getLogger("phr.imaging")


class InProcessImagingJobs:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._importer: Any = None

    def bind(self, importer: Any) -> None:
        self._importer = importer

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def import_archive(self, patient_id: UUID, upload_id: UUID) -> None:
        self._spawn(self._import(patient_id, upload_id), "imaging-import")

    async def _import(self, patient_id: UUID, upload_id: UUID) -> None:
        try:
            await self._importer.run_archive(patient_id, upload_id)
        except Exception as exc:
            log.error("imaging import failed", extra={"error": type(exc).__name__}, exc_info=True)
            await self._importer.fail_import(patient_id, upload_id, "The import failed.")

    async def make_previews(self, patient_id: UUID, series_uids: list[str]) -> None:
        self._spawn(self._previews(patient_id, series_uids), "imaging-previews")

    async def _previews(self, patient_id: UUID, series_uids: list[str]) -> None:
        try:
            await self._importer.make_previews(patient_id, series_uids)
        except Exception as exc:
            log.error("imaging previews failed", extra={"error": type(exc).__name__})

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
