"""`phr serve` as an operator runs it: a real process on a real port, with the
embedded PostgreSQL in its data folder. For end-to-end tests that span restarts:

    with running_service(data_dir) as service:
        httpx.post(service.url("/v1/auth/register"), json=...)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


class Service:
    def __init__(self, process: subprocess.Popen, base_url: str, data_dir: Path, log_path: Path):
        self.process = process
        self.base_url = base_url
        self.data_dir = data_dir
        self.log_path = log_path

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        {
            "PHR_DATA_DIR": str(data_dir),
            "PHR_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def wait_until_healthy(service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(
                f"phr serve exited with {service.process.returncode}:\n{service.log()}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(service.url("/healthz"), timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"phr serve did not answer /healthz within {timeout}s:\n{service.log()}")


def stop_service(service: Service, timeout: float = 20) -> int:
    """SIGTERM, as Docker or systemd would send; returns the exit status."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
    try:
        return service.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()
        raise AssertionError(
            f"phr serve did not stop within {timeout}s of SIGTERM:\n{service.log()}"
        ) from None


@contextlib.contextmanager
def running_service(
    data_dir: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    start_timeout: float = 30,
) -> Iterator[Service]:
    """`phr serve` on `data_dir` (no DATABASE_URL: the embedded PostgreSQL),
    healthy on entry, stopped with SIGTERM on exit."""
    port = port or free_port()
    log_path = data_dir.parent / f"{data_dir.name}-serve-{port}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=service_env(data_dir, port, env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, f"http://127.0.0.1:{port}", data_dir, log_path)
    try:
        wait_until_healthy(service, start_timeout)
        yield service
    finally:
        stop_service(service)


@contextlib.contextmanager
def phr_worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """A `phr worker` process with this environment, its output appended to
    `log_path`; stopped with SIGTERM (then killed) when the block ends, unless a
    test has already killed it."""
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
