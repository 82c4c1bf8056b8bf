"""The composition root: builds the real adapters behind the domain's ports.
Production (`phr serve`) and the tests wire the service through this one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.clock import Clock, SystemClock
from infra.blobs.factory import OpenBlobStore, open_blob_store
from infra.pg.audit import PgAuditLog
from infra.pg.database import Database
from infra.pg.unit_of_work import PgUnitOfWork
from infra.settings import Settings


@dataclass
class Services:
    settings: Settings
    database: Database
    clock: Clock
    audit: PgAuditLog
    blobs: OpenBlobStore
    # Adapters added by later features register here by name (see open_services).
    extras: dict[str, Any] = field(default_factory=dict)

    def unit_of_work(self) -> PgUnitOfWork:
        return PgUnitOfWork(self.database)


async def open_services(settings: Settings, dsn: str, *, clock: Clock | None = None) -> Services:
    database = Database(dsn)
    await database.open()
    clock = clock or SystemClock()
    try:
        blobs = await open_blob_store(settings, clock)
    except BaseException:
        await database.close()
        raise
    return Services(
        settings=settings,
        database=database,
        clock=clock,
        audit=PgAuditLog(database, clock),
        blobs=blobs,
    )


async def close_services(services: Services) -> None:
    try:
        await services.blobs.close()
    finally:
        await services.database.close()
