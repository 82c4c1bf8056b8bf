"""One asyncpg pool, and transactions that nested repository calls join."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import asyncpg.exceptions as pg_errors
from asyncpg.pool import PoolAcquireContext

from domain.fhir import json_codec
from infra.outages import OutageLog

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


# Time bounds, so that a database that is down or stuck costs a request seconds,
# never a hang: opening a connection, waiting for a free one, one statement on
# the server (statement_timeout, lock waits included) and, for a server that
# does not answer at all, on the client.
CONNECT_TIMEOUT_SECONDS = 5.0
ACQUIRE_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 15.0
_CLIENT_MARGIN_SECONDS = 5.0
# Shutdown waits this long for connections still in use; then it drops them.
# asyncpg's close has no bound of its own, and one connection the server left
# mid-exchange would hold a SIGTERM up for ever.
CLOSE_TIMEOUT_SECONDS = 5.0

log = logging.getLogger("phr.database")

# Errors that say the database cannot answer now (down, restarting, crashed,
# out of disk, too slow), as opposed to a request it refused: these become 503
# with Retry-After, never 500. `unavailable_reason` tells them apart.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    pg_errors.PostgresConnectionError,
    pg_errors.OperatorInterventionError,
    pg_errors.InsufficientResourcesError,
    pg_errors.InterfaceError,
    pg_errors.InternalClientError,
    OSError,  # refused, socket gone, timeouts (TimeoutError is an OSError)
)


def unavailable_reason(exc: BaseException) -> str | None:
    """Why the database could not serve, or None when `exc` is no such failure."""
    if isinstance(exc, pg_errors.QueryCanceledError):
        return "statement timeout"
    if isinstance(exc, pg_errors.DiskFullError):
        return "disk full"
    if isinstance(exc, pg_errors.InsufficientResourcesError):
        return "out of resources"
    if isinstance(exc, pg_errors.CannotConnectNowError):
        return "starting up or recovering"
    if isinstance(exc, pg_errors.OperatorInterventionError):
        return "shutting down"
    if isinstance(exc, pg_errors.PostgresConnectionError):
        return "connection lost"
    if isinstance(exc, pg_errors.InternalClientError):
        # Seen when the server dies mid-statement: the connection is left in an
        # operation that never ends, and the pool drops it when its reset fails.
        return "connection lost" if "another operation" in str(exc) else None
    if isinstance(exc, pg_errors.InterfaceError):
        # The same class covers client misuse (a bug, which stays a 500).
        text = str(exc).lower()
        return "connection lost" if "closed" in text or "connection" in text else None
    if not isinstance(exc, OSError) or not _raised_in_asyncpg(exc):
        # A plain OSError elsewhere (a client gone, a file missing) is no
        # database outage.
        return None
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionError | FileNotFoundError):
        return "unreachable"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return None


def _raised_in_asyncpg(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        # Cython frames (the protocol) carry a relative name: asyncpg/protocol/...
        if "asyncpg" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


class _PoolOutageFilter(logging.Filter):
    """asyncpg's pool keeps reconnecting to restore its floor while the server is
    down, logging a traceback each second: those failures count towards the
    outage (one line) instead."""

    def __init__(self, outages: OutageLog):
        super().__init__("asyncpg.pool")
        self._outages = outages

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        reason = unavailable_reason(exc) if exc is not None else None
        if reason is None:
            return True
        self._outages.failed("database", reason, f"{type(exc).__name__}: {exc}")
        return False


_POOL_LOG = logging.getLogger("asyncpg.pool")


# After these a connection's place in the protocol exchange cannot be trusted:
# the server died or stalled mid-statement, or the client lost track of it.
# Pooled again, such a connection answers every later statement with "another
# operation is in progress" (the release hook, `_keep_session`, runs no query
# that would notice), and shutdown waits for it for ever.
_UNSOUND_AFTER: tuple[type[BaseException], ...] = (
    pg_errors.InterfaceError,
    pg_errors.InternalClientError,
    pg_errors.PostgresConnectionError,
)


def _unsound_after(exc: BaseException | None) -> bool:
    if isinstance(exc, _UNSOUND_AFTER):
        return True
    # The socket, or a client-side timeout mid-statement; an OSError of other work
    # done while the connection was held (a file, object storage) leaves it whole.
    return isinstance(exc, OSError) and _raised_in_asyncpg(exc)


def discard_if_unsound(conn: asyncpg.Connection, exc: BaseException | None) -> None:
    """Closes `conn` rather than let the pool hand it out again when its use
    ended in `exc` and `exc` may have left it mid-exchange; the pool opens a
    fresh connection in its place on a later acquire."""
    if not _unsound_after(exc):
        return
    # A connection the server closed has already been let go by the pool (asyncpg
    # detached it): nothing left to close, and the request keeps its own error.
    with contextlib.suppress(pg_errors.InterfaceError):
        if not conn.is_closed():
            conn.terminate()


class _AcquireContext(PoolAcquireContext):
    """asyncpg's acquire context, closing an unsound connection on the way out."""

    __slots__ = ()

    async def __aexit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        if exc is not None and self.connection is not None:
            discard_if_unsound(self.connection, exc)
        await super().__aexit__(exc_type, exc, tb)


class _BoundedPool:
    """The asyncpg pool, with a default bound on waiting for a connection, and
    connections a failure may have left mid-exchange closed, never reused."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float):
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        if timeout is None and self._has_free_holder():
            # A connection is free, so taking it cannot wait: no timer is armed
            # (nor kept for the release), which is most of an acquire's cost on
            # the common path. An idle connection is in the pool's queue, and
            # nothing runs between this check and the queue's get.
            return _AcquireContext(self._pool, None)
        return _AcquireContext(self._pool, timeout or self._acquire_timeout)

    def _has_free_holder(self) -> bool:
        # The pool's queue of free holders (asyncpg's own name): its length is
        # one call, where get_idle_size() walks every holder on each acquire (a
        # few per cent of an audited read). A free holder whose connection was
        # closed reconnects under the connect timeout; it never waits for another.
        queue = getattr(self._pool, "_queue", None)
        return bool(queue.qsize() if queue is not None else self._pool.get_idle_size())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's reset query (unlock advisory locks, close
    cursors, UNLISTEN, RESET ALL): one round trip per release that buys nothing
    here, since pooled connections keep no session state (no SET, no LISTEN, no
    session advisory locks; the worker keeps its own connection for those). An
    open transaction is still rolled back by the pool before this runs."""


class Database:
    """Owns the pool. `transaction()` opens a transaction, or joins the one already
    open in this task, so a use case that calls several repositories commits once.

    The pool recovers by itself after an outage: asyncpg drops connections the
    server closed and opens new ones on the next acquire."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        role: str | None = APP_ROLE,
        statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
        close_timeout: float = CLOSE_TIMEOUT_SECONDS,
        outages: OutageLog | None = None,
    ):
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._role = role
        self._statement_timeout = statement_timeout
        self._connect_timeout = connect_timeout
        self._acquire_timeout = acquire_timeout
        self._close_timeout = close_timeout
        self.outages = outages or OutageLog()
        self._log_filter = _PoolOutageFilter(self.outages)
        self._pool: _BoundedPool | None = None
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
            # A new connection after an outage: the server is back.
            self.outages.recovered("database")

        pool = await asyncpg.create_pool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            init=setup,
            timeout=self._connect_timeout,
            command_timeout=self._statement_timeout + _CLIENT_MARGIN_SECONDS,
            reset=_keep_session,
            # Statements are cached per connection; the role is set once per connection.
            server_settings={
                "application_name": "phr",
                "timezone": "UTC",
                "statement_timeout": str(int(self._statement_timeout * 1000)),
            },
        )
        self._pool = _BoundedPool(pool, self._acquire_timeout)
        _POOL_LOG.addFilter(self._log_filter)

    async def close(self) -> None:
        if self._pool is not None:
            _POOL_LOG.removeFilter(self._log_filter)
            try:
                await asyncio.wait_for(self._pool.close(), self._close_timeout)
            except TimeoutError:
                # Cancelled, close() has terminated every connection itself.
                log.warning(
                    "database connections still in use at shutdown: closed without waiting",
                    extra={"waitedSeconds": self._close_timeout},
                )
            finally:
                self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:  # a _BoundedPool, which acts as one
        if self._pool is None:
            raise RuntimeError("database pool is not open")
        return self._pool  # type: ignore[return-value]

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
