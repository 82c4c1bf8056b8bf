"""A unit of work that joins the one already open in this task as a savepoint.

Use cases that run inside another one (the webhook's delivery, which must store
its reply in the same transaction as the records it ingests) get their own
all-or-nothing scope without a second connection: `commit()` releases the
savepoint into the outer transaction, leaving without it rolls back to it."""

from __future__ import annotations

from types import TracebackType

from infra.pg.database import Database


class PgJoinedUnitOfWork:
    def __init__(self, database: Database):
        self._database = database
        self._stack: list[tuple[object, object, bool]] = []

    async def __aenter__(self) -> PgJoinedUnitOfWork:
        outer = self._database.transaction()
        conn = await outer.__aenter__()
        savepoint = conn.transaction()
        await savepoint.start()
        self._stack.append((outer, savepoint, False))
        return self

    async def commit(self) -> None:
        outer, savepoint, _ = self._stack[-1]
        await savepoint.commit()  # type: ignore[attr-defined]
        self._stack[-1] = (outer, savepoint, True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        outer, savepoint, committed = self._stack.pop()
        try:
            if not committed:
                await savepoint.rollback()  # type: ignore[attr-defined]
        finally:
            # Joined: leaving changes nothing. Standalone (nothing to join): the
            # transaction opened for us commits what the savepoint kept.
            await outer.__aexit__(None, None, None)  # type: ignore[attr-defined]
