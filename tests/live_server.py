"""The app served over real HTTP on 127.0.0.1 by uvicorn in a thread of the test
process, on the test run's database: for clients that are not Python (a
browser) and for requests that must cross a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from tests.conftest import settings_for


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, base_url: str):
        self.base_url = base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


@contextlib.contextmanager
def live_server(
    database_dsn: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    from api.app import create_app

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = settings_for(
        database_dsn, data_dir, {"PHR_PUBLIC_URL": base_url, **(extra_env or {})}
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the live server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
