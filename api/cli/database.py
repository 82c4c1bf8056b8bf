"""The database an operator command talks to, and the services it calls:
the composition root's, opened small (one connection, no blob store)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from domain.ports import Clock
from infra.bootstrap import Services, close_services, open_services
from infra.settings import Settings


class PendingMigrations(Exception):
    pass


@contextlib.contextmanager
def database_dsn(settings: Settings) -> Iterator[str]:
    """The external DATABASE_URL, or the embedded server on PHR_DATA_DIR: the one
    already running there (e.g. under `phr serve`), else one started for as long
    as this command needs it."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    from infra.embedded_postgres import EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(settings.data_dir)
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def operator_services(
    dsn: str, settings: Settings, clock: Clock | None = None
) -> AsyncIterator[Services]:
    """Operator commands do not migrate: with migrations pending they stop and say
    to run `phr migrate` (or start `phr serve`), so a command never changes the
    schema under a running server."""
    services = await open_services(settings, dsn, clock=clock, pool_size=1, with_blobs=False)
    try:
        missing = await services.pending_migrations()
        if missing:
            raise PendingMigrations(
                f"the database has pending migrations ({', '.join(missing)}); "
                "run `phr migrate` (or start `phr serve`) first"
            )
        yield services
    finally:
        await close_services(services)
