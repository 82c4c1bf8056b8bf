"""The pool never hands out a connection left in the middle of an exchange, and
shutdown never waits for ever on one.

Seen under load when the embedded PostgreSQL was killed: a connection released
mid-statement went back to the pool (its release runs no query that would
notice), every later request on it answered 503 "another operation is in
progress", and `phr serve` hung on SIGTERM waiting for it to be released."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest

from infra.pg.database import Database


@pytest.fixture
async def one_connection_pool(database_dsn: str):
    database = Database(database_dsn, min_size=1, max_size=1, close_timeout=0.5)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def test_a_connection_left_mid_statement_is_not_handed_out_again(one_connection_pool):
    database = one_connection_pool
    async with database.connection() as conn:
        first_backend = await conn.fetchval("SELECT pg_backend_pid()")
    running: asyncio.Task | None = None
    with pytest.raises(asyncpg.InterfaceError, match="another operation is in progress"):
        async with database.connection() as conn:
            # A statement still in flight when the block ends with a protocol error.
            running = asyncio.create_task(conn.fetchval("SELECT pg_sleep(2)"))
            await asyncio.sleep(0.1)
            await conn.fetchval("SELECT 1")
    async with database.connection() as conn:
        # Without the discard this connection is the one still running pg_sleep:
        # the statement fails with "another operation is in progress".
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert await conn.fetchval("SELECT pg_backend_pid()") != first_backend
    assert running is not None
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
        await running


async def test_an_error_of_the_request_itself_keeps_the_connection(one_connection_pool):
    database = one_connection_pool
    async with database.connection() as conn:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(asyncpg.UndefinedTableError):
        async with database.connection() as conn:
            await conn.fetchval("SELECT 1 FROM no_such_table")
    with pytest.raises(ValueError):
        async with database.transaction():
            raise ValueError("a rule refused the change")
    with pytest.raises(ConnectionRefusedError):
        async with database.connection():
            # Other work done while holding the connection (object storage, say).
            raise ConnectionRefusedError("the S3 endpoint refused")
    async with database.connection() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == backend


async def test_shutdown_does_not_wait_for_ever_on_a_connection_in_use(database_dsn: str):
    database = Database(database_dsn, min_size=1, max_size=2, close_timeout=0.5)
    await database.open()
    stuck = await database.pool.acquire()  # never released, as a wedged request's
    backend = await stuck.fetchval("SELECT pg_backend_pid()")
    started = time.monotonic()
    await asyncio.wait_for(database.close(), 10)
    assert time.monotonic() - started < 5
    # And the connection was closed, not left open behind the pool.
    observer = await asyncpg.connect(database_dsn)
    try:
        deadline = time.monotonic() + 5
        while await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend
        ):
            assert time.monotonic() < deadline, "the in-use connection was left open"
            await asyncio.sleep(0.05)
    finally:
        await observer.close()


async def test_a_connection_the_server_closed_fails_with_the_statements_own_error(
    one_connection_pool, superuser_conn
):
    database = one_connection_pool
    statement_error: BaseException | None = None
    with pytest.raises(asyncpg.InterfaceError) as raised:
        async with database.connection() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            await superuser_conn.execute("SELECT pg_terminate_backend($1)", backend)
            await asyncio.sleep(0.2)  # the server's goodbye has arrived
            try:
                await conn.fetchval("SELECT 1")
            except BaseException as exc:
                statement_error = exc
                raise
    # The block ends with what the statement raised (asyncpg had already let the
    # connection go), not with a second error from closing it again.
    assert raised.value is statement_error
    async with database.connection() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") != backend
