"""Background jobs as the domain sees them: something to do later, enqueued in the
same transaction as the change that calls for it (a transactional outbox), so a
job exists exactly when that change committed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec


class Job(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    payload: dict[str, Any]
    # 1 on the first run; a job whose earlier run failed or whose process died
    # runs again with a higher attempt.
    attempt: int


class JobQueue(Protocol):
    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        run_at: datetime | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        """Adds a job inside the current unit of work's transaction (it commits or
        rolls back with it). A `dedupe_key` already used enqueues nothing (the same
        occurrence is enqueued once); returns whether a job was added."""
        ...
