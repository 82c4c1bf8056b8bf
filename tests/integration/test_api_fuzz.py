"""Schemathesis generates requests from the committed OpenAPI document and sends
them to a real server: no input may produce a 500, and every answer that is an
error is problem+json. (A first run of this found NUL bytes reaching PostgreSQL.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import scratch_database
from tests.e2e.service import running_service
from tests.mail_support import code_from_folder

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_path(ROOT / "openapi" / "openapi.json")
FUZZ_PASSWORD = "fuzzing all the things"


@pytest.fixture(scope="module")
def fuzz_database(admin_dsn: str) -> Iterator[str]:
    """A database of its own: thousands of failed logins from one address must not
    throttle the other tests."""
    with scratch_database(admin_dsn, "phr_fuzz") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def live_service(fuzz_database: str, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """`phr serve` on loopback, on a database of its own, and a patient."""
    data_dir = tmp_path_factory.mktemp("fuzz") / "phr-data"
    data_dir.mkdir()
    env = {"DATABASE_URL": fuzz_database, "PHR_LOG_LEVEL": "ERROR"}
    with running_service(data_dir, env=env) as service:
        base = service.base_url
        account = {
            "email": f"fuzz-{uuid.uuid4().hex[:8]}@example.org",
            "password": FUZZ_PASSWORD,
        }
        assert httpx.post(base + "/v1/auth/register", json=account).status_code == 202
        code = code_from_folder(data_dir / "mail", account["email"])
        verified = httpx.post(
            base + "/v1/auth/verify-email", json={"email": account["email"], "code": code}
        )
        assert verified.status_code == 204
        token = httpx.post(base + "/v1/auth/login", json=account).json()["accessToken"]
        yield base, {"Authorization": f"Bearer {token}"}


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
