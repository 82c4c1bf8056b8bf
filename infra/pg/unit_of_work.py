"""The PostgreSQL unit of work: one transaction per use case, rolled back unless
the use case commits. Repositories called inside it join the same transaction."""

from __future__ import annotations

from types import TracebackType

import asyncpg

from infra.pg.database import Database, discard_if_unsound


class PgUnitOfWork:
    def __init__(self, database: Database):
        self._database = database
        self._stack: list[tuple[asyncpg.Connection, object, object, object]] = []

    async def __aenter__(self) -> PgUnitOfWork:
        conn = await self._database.pool.acquire()
        tx = conn.transaction()
        await tx.start()
        token = self._database.bind(conn)
        self._stack.append((conn, tx, token, False))
        return self

    async def commit(self) -> None:
        conn, tx, token, _ = self._stack[-1]
        await tx.commit()  # type: ignore[attr-defined]
        self._stack[-1] = (conn, tx, token, True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, tx, token, committed = self._stack.pop()
        try:
            if not committed:
                await tx.rollback()  # type: ignore[attr-defined]
        finally:
            try:
                self._database.unbind(token)  # type: ignore[arg-type]
            finally:
                discard_if_unsound(conn, exc)
                await self._database.pool.release(conn)
