"""Shared pieces for the benchmarks: a database of their own, a real uvicorn
server on loopback, and timing helpers. Every loop is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh, migrated database on DATABASE_URL or the embedded server."""
    from api.cli.database import database_dsn
    from infra.pg.migration_runner import migrate
    from infra.settings import load_settings

    settings = load_settings()
    with database_dsn(settings) as admin:
        name = f"phr_bench_{uuid.uuid4().hex[:10]}"
        parts = urlsplit(admin)
        dsn = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))

        async def create() -> None:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            await migrate(dsn)

        async def drop() -> None:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()

        asyncio.run(create())
        try:
            yield dsn
        finally:
            asyncio.run(drop())


@contextlib.contextmanager
def uvicorn_server(
    app: str, dsn: str, *, env: dict[str, str] | None = None, factory: bool = True
) -> Iterator[tuple[str, int]]:
    """Runs `app` (an import string) in a uvicorn subprocess; yields (base url, pid)."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="phr-bench-"))
    child_env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PHR_RESOLVED_DATABASE_URL": dsn,
        "PHR_DATA_DIR": str(data_dir),
        "PHR_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PHR_LOG_LEVEL": "WARNING",
        # Benchmarks register their accounts from one address.
        "PHR_REGISTRATIONS_PER_HOUR": "1000000",
        **(env or {}),
    }
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        args.append("--factory")
    proc = subprocess.Popen(args, env=child_env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{app} did not start")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def throughput(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 16,
    seconds: float = 4.0,
) -> tuple[float, list[float]]:
    """Requests per second with `concurrency` clients for `seconds`; also latencies."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.get(url, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def sequential_latencies(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None, count: int = 200
) -> list[float]:
    out: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
        out.append(time.perf_counter() - started)
    return out


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, from /proc."""
    current = peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    return current, peak
