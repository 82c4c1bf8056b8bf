"""Waiting for an effect that a fault test expects to come (a job done, a message
delivered) without sleeping a fixed time: poll, and fail naming what did not come."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]],
    timeout: float,
    what: str,
    *,
    context: Callable[[], str] = lambda: "",
    interval: float = 0.05,
) -> Any:
    """The first truthy value `check` returns; after `timeout` seconds, an
    AssertionError with `what`, the last value and whatever `context` adds (a log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})\n{context()}")
        await asyncio.sleep(interval)
