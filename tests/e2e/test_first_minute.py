"""The first minute, as a newcomer sees it: `phr serve` in a terminal says in
plain words where it runs, where the API documentation is and what to do next;
GET / links to the documentation, health and the viewer."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.service import REPO_ROOT, free_port, service_env


def read_until(fd: int, needle: str, timeout: float) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            seen += chunk
            if needle.encode() in seen:
                return seen.decode(errors="replace")
    raise AssertionError(
        f"{needle!r} not printed within {timeout}s; got:\n{seen.decode(errors='replace')}"
    )


def test_serve_tells_a_newcomer_where_it_runs_and_what_to_do_next(serve_data_dir: Path):
    port = free_port()
    main, terminal = pty.openpty()
    log_path = serve_data_dir.parent / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=service_env(serve_data_dir, port),
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=log,
        )
    os.close(terminal)
    try:
        text = read_until(main, "Stop with Ctrl-C", 60)
        address = f"http://127.0.0.1:{port}"
        assert f"phr is running at {address}" in text
        assert f"API documentation: {address}/openapi" in text
        assert "phr hospital add --name" in text
        # The JSON log lines stay on stderr, out of the newcomer's way.
        assert '"level"' not in text

        home = httpx.get(address + "/", timeout=10)
        assert home.status_code == 200
        links = home.json()["links"]
        assert links["viewer"] == f"{address}/viewer"
        for name in ("documentation", "openapi", "health", "readiness"):
            assert httpx.get(links[name], timeout=10).status_code == 200, name
        assert "openapi" in httpx.get(links["openapi"], timeout=10).json()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        os.close(main)


def test_serve_prints_no_banner_when_stdout_is_not_a_terminal(serve_data_dir: Path):
    from tests.e2e.service import running_service

    with running_service(serve_data_dir) as service:
        assert httpx.get(service.url("/"), timeout=10).status_code == 200
    assert "phr is running at" not in service.log()
