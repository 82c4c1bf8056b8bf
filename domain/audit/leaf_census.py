"""How many leaf rows the log holds below a tree size: /v1/audit/verify's check
that no leaf row is gone (a leaf deleted together with its event leaves no trace
in the stored tree, whose inner nodes still give the signed root).

Counting every leaf on every verification costs the database a scan of the whole
service-wide log (about 55 ms per million leaves, measured), which any patient
could ask for as often as they liked. So a full count is taken at most once per
`max_age` per process; in between, only the leaves sealed since it are counted and
added. A leaf row deleted after a full count is reported by the first
verification once that count is older than `max_age`, instead of at once: the
price of a bounded cost, and the reason `max_age` is short."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import msgspec

from domain.audit.ports import TransparencyLogStore
from domain.ports import Clock

FULL_COUNT_MAX_AGE = timedelta(minutes=1)


class _Count(msgspec.Struct, frozen=True):
    below_size: int
    leaves: int
    # When the full count this one grew from was taken.
    full_count_at: datetime


class LeafCensus:
    def __init__(
        self,
        store: TransparencyLogStore,
        clock: Clock,
        *,
        max_age: timedelta = FULL_COUNT_MAX_AGE,
    ):
        self._store = store
        self._clock = clock
        self._max_age = max_age
        self._last: _Count | None = None
        # Verifications that find the full count stale at the same moment share
        # one new count instead of each scanning the log.
        self._lock = asyncio.Lock()

    async def leaves_below(self, size: int) -> int:
        async with self._lock:
            now = self._clock.now()
            last = self._last
            if last is None or last.below_size > size or now - last.full_count_at >= self._max_age:
                # A tree smaller than the last count is a truncation: count it whole.
                counted = _Count(size, await self._store.leaf_count(0, size), now)
            else:
                added = await self._store.leaf_count(last.below_size, size)
                counted = _Count(size, last.leaves + added, last.full_count_at)
            self._last = counted
            return counted.leaves
