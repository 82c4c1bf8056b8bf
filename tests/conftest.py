"""Test wiring: a real PostgreSQL (DATABASE_URL, or the embedded server), one
fresh database per test run, and the app reached over its HTTP interface."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from infra.pg.migration_runner import migrate
from infra.settings import Settings, load_settings
from tests.s3_server import s3_server  # noqa: F401  (session fixture: a real S3 server)

# One secrets key for the whole run (and the servers it starts): the run's database
# is shared by its tests, and what one test's service sealed (signing keys, hospital
# secrets) another test's service must open.
os.environ.setdefault("PHR_SECRETS_KEY", base64.b64encode(os.urandom(32)).decode())


# Every test registers its patients from the same test-client address.
UNTHROTTLED_REGISTRATION = {"PHR_REGISTRATIONS_PER_HOUR": "1000000"}


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session", autouse=True)
def one_client_address_for_the_whole_suite() -> Iterator[None]:
    """Every in-process test client connects from the same address, and a run
    registers hundreds of patients: the per-address limit on mail-sending account
    requests would stop it. Tests of that limit set it explicitly."""
    import infra.settings

    saved = infra.settings.DEFAULT_ACCOUNT_MAIL_PER_ADDRESS
    infra.settings.DEFAULT_ACCOUNT_MAIL_PER_ADDRESS = 1_000_000
    yield
    infra.settings.DEFAULT_ACCOUNT_MAIL_PER_ADDRESS = saved


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    """A server to create test databases on: DATABASE_URL when set, otherwise the
    embedded PostgreSQL, started in a temporary folder for this run."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    from infra.embedded_postgres import EmbeddedPostgres

    folder = Path(tempfile.mkdtemp(prefix="phr-test-pg-"))
    server = EmbeddedPostgres(folder)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch_database(admin_dsn: str, prefix: str = "phr_test") -> Iterator[str]:
    """A migrated database of its own on the test server, dropped afterwards: the
    one way tests make a database."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(migrate(with_database(admin_dsn, name)))
        yield with_database(admin_dsn, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_dsn(admin_dsn: str) -> Iterator[str]:
    """A database of this run's own: runs never collide."""
    with scratch_database(admin_dsn) as dsn:
        yield dsn


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "phr-data"
    folder.mkdir()
    return folder


TEST_PUBLIC_URL = "http://testserver.local"
# One audit log key per run, like the one database: every test's app signs
# checkpoints of the same log with it.
TEST_AUDIT_LOG_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="session")
def audit_log_key() -> str:
    return TEST_AUDIT_LOG_KEY


def settings_for(
    database_dsn: str, data_dir: Path, overrides: dict[str, str] | None = None
) -> Settings:
    """The settings every test app runs with, `overrides` (environment names) on top."""
    return load_settings(
        {
            "DATABASE_URL": database_dsn,
            "PHR_DATA_DIR": str(data_dir),
            "PHR_PUBLIC_URL": TEST_PUBLIC_URL,
            **UNTHROTTLED_REGISTRATION,
            "PHR_SECRETS_KEY": os.environ["PHR_SECRETS_KEY"],
            # Tests run jobs when they mean to (Worker.run_pending / run_periodic).
            "PHR_WORKER": "off",
            "PHR_AUDIT_LOG_KEY": TEST_AUDIT_LOG_KEY,
            **(overrides or {}),
        }
    )


@pytest.fixture
def settings(database_dsn: str, data_dir: Path) -> Settings:
    return settings_for(database_dsn, data_dir)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    from api.app import create_app

    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def superuser_conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the database owner, bypassing the application role: for
    tests that play an attacker with direct database access."""
    conn = await asyncpg.connect(database_dsn)
    try:
        yield conn
    finally:
        await conn.close()


class Patient:
    """A registered, logged-in patient, made through the public API."""

    def __init__(self, email: str, password: str, tokens: dict, profile: dict):
        self.email = email
        self.password = password
        self.tokens = tokens
        self.profile = profile

    @property
    def id(self) -> str:
        return self.profile["id"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['accessToken']}"}


async def register_patient(
    client,
    *,
    email: str | None = None,
    password: str | None = None,
    display_name: str | None = None,
    mailbox=None,
) -> Patient:
    """Registers, verifies the address with the code read from the mail phr sent
    (the `.eml` folder unless a mailbox is given), and signs in."""
    from tests.mail_support import mailbox_of

    email = email or f"patient-{uuid.uuid4().hex[:10]}@example.org"
    password = password or f"correct horse {uuid.uuid4().hex[:8]} battery"
    mailbox = mailbox or mailbox_of(client)
    fields = {"email": email, "password": password}
    if display_name is not None:
        fields["displayName"] = display_name
    response = await client.post("/v1/auth/register", json=fields)
    assert response.status_code == 202, response.text
    code = await mailbox.next_code(email)
    response = await client.post("/v1/auth/verify-email", json={"email": email, "code": code})
    assert response.status_code == 204, response.text
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens = response.json()
    response = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
    )
    assert response.status_code == 200, response.text
    return Patient(email, password, tokens, response.json())


async def audit_history(client, patient: Patient) -> list[dict]:
    """The patient's own history as GET /v1/audit shows it, oldest first (each look
    at it is itself recorded, after the look)."""
    response = await client.get("/v1/audit?limit=200", headers=patient.headers)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


@pytest.fixture
async def patient(client) -> Patient:
    return await register_patient(client)


@pytest.fixture
async def other_patient(client) -> Patient:
    return await register_patient(client)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Any]:
    """The service's own adapters, opened in the test's event loop (the test
    client runs the app in a loop of its own), for building state through the
    domain the way a hospital push or a background job does."""
    from infra.bootstrap import close_services, open_services

    opened = await open_services(settings, settings.database_url)
    try:
        yield opened
    finally:
        await close_services(opened)
