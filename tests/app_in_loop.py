"""The real app served in the test's own event loop, reached through httpx's ASGI
transport. Unlike litestar's AsyncTestClient (which runs the app on a portal thread
and handles one request at a time), requests gathered here really overlap, and each
client can connect from an address of its choosing (for throttling tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[Any]:
    """Runs the ASGI lifespan (startup before, shutdown after) around the block."""
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    outbox: asyncio.Queue[dict] = asyncio.Queue()

    async def receive() -> dict:
        return await inbox.get()

    async def send(message: dict) -> None:
        await outbox.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        task.cancel()
        raise RuntimeError(f"app did not start: {started}")
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def client_from(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://testserver.local",
        timeout=60,
    )


@pytest.fixture(name="app")
async def in_loop_app(settings) -> AsyncIterator[Any]:
    """The app with the test settings, in this test's loop (import this fixture)."""
    from api.app import create_app

    async with running(create_app(settings)) as started:
        yield started
