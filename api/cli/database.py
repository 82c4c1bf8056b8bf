"""The database an operator command talks to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from infra.settings import Settings


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
