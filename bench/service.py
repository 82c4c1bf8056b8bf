"""Shared pieces for the benchmarks: a database of their own, a real uvicorn
server on loopback, and timing helpers. Every loop is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec

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
    app: str,
    dsn: str,
    *,
    env: dict[str, str] | None = None,
    factory: bool = True,
    workers: int = 1,
) -> Iterator[tuple[str, int]]:
    """Runs `app` (an import string) in a uvicorn subprocess; yields (base url, pid).
    With `workers` > 1 the pid is uvicorn's supervisor: `worker_pids(pid)`."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="phr-bench-"))
    child_env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PHR_RESOLVED_DATABASE_URL": dsn,
        "PHR_DATA_DIR": str(data_dir),
        "PHR_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PHR_LOG_LEVEL": "WARNING",
        # Benchmarks sign in many fresh accounts from one address: no mailed codes
        # to read, no per-address limit on registrations.
        "PHR_EMAIL_VERIFICATION": "off",
        "PHR_ACCOUNT_MAIL_PER_ADDRESS": "1000000",
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
        # As `phr serve` runs uvicorn (api/cli/main.py): phr reads forwarded
        # headers itself, from PHR_TRUSTED_PROXIES only.
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]
    if factory:
        args.append("--factory")
    if workers > 1:
        args += ["--workers", str(workers)]
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


class WrkResult(msgspec.Struct):
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and non-2xx/3xx answers


def _wrk_ms(text: str) -> float:
    text = text.strip()
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def wrk(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    seconds: float = 5,
    connections: int = 16,
    threads: int = 1,
    script: Path | None = None,
    timeout_seconds: int = 10,
) -> WrkResult:
    """HTTP throughput and latency by wrk (C, epoll): the load client must not be
    what saturates first. One thread by default: the server shares 2 cores."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_seconds}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    args.append(url)
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    out = done.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if total is None:
        raise RuntimeError(f"wrk printed no totals:\n{out}")
    requests = int(total.group(1))
    elapsed = float(total.group(2)) * {"ms": 0.001, "s": 1, "m": 60}.get(total.group(3), 1)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = 0
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        errors += sum(int(g) for g in socket.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(
        requests=requests,
        seconds=elapsed,
        rps=requests / elapsed if elapsed else 0.0,
        p50_ms=_wrk_ms(p50.group(1)) if p50 else math.nan,
        p99_ms=_wrk_ms(p99.group(1)) if p99 else math.nan,
        errors=errors,
    )


def worker_pids(pid: int) -> list[int]:
    """The worker processes of a uvicorn supervisor (itself when it has none);
    multiprocessing's resource tracker is no worker."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return [pid]
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            continue
    return workers or [pid]


class WrkRun(NamedTuple):
    """One `run_wrk`: seconds for p50/p99 (records.py's figures)."""

    requests: int
    non_2xx: int
    rps: float
    p50: float
    p99: float


def ensure_wrk() -> str:
    """wrk, the native load generator (Debian package `wrk`), installed when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def _seconds(text: str) -> float:
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def run_wrk(
    base: str,
    requests: list[tuple[str, dict[str, str]]],
    *,
    seconds: int = 10,
    connections: int = 32,
    threads: int = 2,
) -> WrkRun:
    """wrk against `base`, cycling through `requests` (path, headers), each thread
    starting at another place in the list."""
    lines = ["local reqs = {}"]
    for index, (path, headers) in enumerate(requests, start=1):
        header_table = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
        lines.append(f'reqs[{index}] = {{"{path}", {{{header_table}}}}}')
    lines.append(
        """
local counter = 0
local formatted = {}
function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end
function init(args)
  for i, r in ipairs(reqs) do formatted[i] = wrk.format("GET", r[1], r[2]) end
  position = (offset or 0) % #formatted
end
function request()
  position = position % #formatted + 1
  return formatted[position]
end
"""
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines))
    try:
        out = subprocess.run(
            [
                ensure_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                "--latency", "-s", script.name, base,
            ],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _seconds(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1))
    p99 = _seconds(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1))
    return WrkRun(total, int(non_2xx.group(1)) if non_2xx else 0, rps, p50, p99)


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"
