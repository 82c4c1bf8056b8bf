"""One asyncpg pool, and transactions that nested repository calls join."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from domain.fhir import json_codec

# The role the application acts as. Migrations (run as the connecting, owning user)
# create it and grant it only what it needs, so that e.g. the audit table can be
# made append-only for everything the application does.
APP_ROLE = "phr_app"


class PreEncodedJson(bytes):
    """JSON text already encoded (canonical FHIR JSON): written as it is, so a
    resource hashed over these bytes is stored as exactly these bytes."""


def _json_bytes(value: object) -> bytes:
    return value if isinstance(value, PreEncodedJson) else json_codec.encode(value)


# Binary format, so COPY can write JSONB too; jsonb's binary form is a version
# byte (1) before the text. FHIR decimals keep their digits: 1.50 stays 1.50.
_JSONB_VERSION = b"\x01"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: _JSONB_VERSION + _json_bytes(value),
        decoder=lambda data: json_codec.decode(data[1:]),
        format="binary",
    )
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=_json_bytes,
        decoder=json_codec.decode,
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's reset query (unlock advisory locks, close
    cursors, UNLISTEN, RESET ALL): one round trip per release that buys nothing
    here, since pooled connections keep no session state (no SET, no LISTEN, no
    session advisory locks; the worker keeps its own connection for those). An
    open transaction is still rolled back by the pool before this runs."""


class Database:
    """Owns the pool. `transaction()` opens a transaction, or joins the one already
    open in this task, so a use case that calls several repositories commits once."""

    def __init__(
        self, dsn: str, *, min_size: int = 2, max_size: int = 10, role: str | None = APP_ROLE
    ):
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._role = role
        self._pool: asyncpg.Pool | None = None
        self._current: contextvars.ContextVar[asyncpg.Connection | None] = contextvars.ContextVar(
            f"phr_db_connection_{id(self)}", default=None
        )

    @property
    def dsn(self) -> str:
        return self._dsn

    async def open(self) -> None:
        async def setup(conn: asyncpg.Connection) -> None:
            await _init_connection(conn)
            if self._role is not None:
                await conn.execute(f"SET ROLE {self._role}")

        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            init=setup,
            reset=_keep_session,
            # Statements are cached per connection; the role is set once per connection.
            server_settings={"application_name": "phr", "timezone": "UTC"},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool is not open")
        return self._pool

    def bind(self, conn: asyncpg.Connection) -> contextvars.Token:
        """Make `conn` the one that repository calls in this task join."""
        return self._current.set(conn)

    def unbind(self, token: contextvars.Token) -> None:
        try:
            self._current.reset(token)
        except ValueError:
            # Unbound from another context than the one that bound it (a streamed
            # response finishes in a task of its own): that context only needs
            # to stop seeing the connection.
            self._current.set(None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        current = self._current.get()
        if current is not None:
            yield current
            return
        async with self.pool.acquire() as conn, conn.transaction():
            token = self._current.set(conn)
            try:
                yield conn
            finally:
                self._current.reset(token)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection outside any transaction (joins an open one if there is one),
        for streaming reads that manage their own transaction."""
        current = self._current.get()
        if current is not None:
            yield current
            return
        async with self.pool.acquire() as conn:
            token = self._current.set(conn)
            try:
                yield conn
            finally:
                self._current.reset(token)
