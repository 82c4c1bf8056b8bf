"""Schemathesis generates requests from the committed OpenAPI document and sends
them to a real server: no input may produce a 500, and every answer that is an
error is problem+json. (A first run of this found NUL bytes reaching PostgreSQL.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_path(ROOT / "openapi" / "openapi.json")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fuzz_database(admin_dsn: str) -> Iterator[str]:
    """A database of its own: thousands of failed logins from one address must not
    throttle the other tests."""
    import asyncio

    import asyncpg

    from infra.pg.migration_runner import migrate
    from tests.conftest import with_database

    name = f"phr_fuzz_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    dsn = with_database(admin_dsn, name)
    try:
        asyncio.run(migrate(dsn))
        yield dsn
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def live_service(fuzz_database: str, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The app under uvicorn on loopback, on a database of its own, and a patient."""
    database_dsn = fuzz_database
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_dsn,
        "PHR_DATA_DIR": str(tmp_path_factory.mktemp("fuzz-data")),
        "PHR_PUBLIC_URL": base,
        "PHR_LOG_LEVEL": "ERROR",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.1)
        account = {
            "email": f"fuzz-{uuid.uuid4().hex[:8]}@example.org",
            "password": "fuzzing all the things",
        }
        assert httpx.post(base + "/v1/auth/register", json=account).status_code == 201
        token = httpx.post(base + "/v1/auth/login", json=account).json()["accessToken"]
        yield base, {"Authorization": f"Bearer {token}"}
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.slow
@schema.exclude(path_regex=r"^/v1/me$").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_produces_a_server_error(case, live_service):
    base, headers = live_service
    response = case.call(base_url=base, headers=headers, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type") or [""]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), (
            case.method,
            case.formatted_path,
        )
