"""Requests per client address before anyone is authenticated, counted in this
process's memory. It guards the paths an anonymous sender can hit before we know
who they are (a hospital's webhook): counting those in the database would itself
hand a flood one write per request. A fixed window per address; the table of
addresses is bounded (the oldest windows are dropped first), so a sender cycling
through addresses costs memory up to that bound and no more."""

from __future__ import annotations

import time
from collections import OrderedDict

from domain.errors import RateLimited


class FloodGuard:
    def __init__(self, limit: int, window_seconds: int, *, max_addresses: int = 65536):
        self._limit = limit
        self._window = window_seconds
        self._max = max_addresses
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def hit(self, address: str | None, *, now: float | None = None) -> None:
        """Counts one request from `address`; raises RateLimited past the limit."""
        now = time.monotonic() if now is None else now
        key = address or "unknown"
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self._window:
            started, count = now, 0
        count += 1
        self._windows[key] = (started, count)
        self._windows.move_to_end(key)
        while len(self._windows) > self._max:
            self._windows.popitem(last=False)
        if count > self._limit:
            raise RateLimited(
                "Too many requests from this address; retry after the indicated time.",
                retry_after_seconds=int(started + self._window - now) + 1,
                limit=self._limit,
                window_seconds=self._window,
            )
