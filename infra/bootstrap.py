"""The composition root: builds the real adapters behind the domain's ports.
Production (`phr serve`) and the tests wire the service through this one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.clock import Clock, SystemClock
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
    # Adapters added by later features register here by name (see open_services).
    extras: dict[str, Any] = field(default_factory=dict)

    def unit_of_work(self) -> PgUnitOfWork:
        return PgUnitOfWork(self.database)


async def open_services(settings: Settings, dsn: str, *, clock: Clock | None = None) -> Services:
    database = Database(dsn)
    await database.open()
    clock = clock or SystemClock()
    return Services(
        settings=settings,
        database=database,
        clock=clock,
        audit=PgAuditLog(database, clock),
    )


async def close_services(services: Services) -> None:
    await services.database.close()
