"""The embedded default: without SMTP_URL, mail is written as `.eml` files under
PHR_DATA_DIR/mail/; and mail survives an SMTP outage as a queued job."""

from __future__ import annotations

import asyncio
import logging
import socket
import stat
import uuid
from email import message_from_bytes, policy

import msgspec

from tests.conftest import register_patient
from tests.mail_support import EmlFolder, SmtpServer, body_html, body_text, code_in


def new_email() -> str:
    return f"eml-{uuid.uuid4().hex[:12]}@example.org"


def new_password() -> str:
    return f"copper kettle {uuid.uuid4().hex[:8]} orchard"


async def test_registration_mail_is_an_eml_file_that_verifies_the_account(client, data_dir):
    folder = EmlFolder(data_dir / "mail")
    patient = await register_patient(client, mailbox=folder)
    files = folder.files()
    assert len(files) == 1
    path = files[0]
    # Codes are secrets: only the service's user may read them.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == patient.email
    assert message["Message-ID"] and message["Date"] and message["From"]
    assert message.is_multipart()
    code = code_in(message)
    assert code in body_text(message) and code in body_html(message)
    assert patient.profile["emailVerified"] is True


async def test_one_log_line_per_message_without_content_or_code(client, data_dir, caplog):
    caplog.set_level(logging.INFO, logger="phr.mail")
    folder = EmlFolder(data_dir / "mail")
    email = new_email()
    await client.post("/v1/auth/register", json={"email": email, "password": new_password()})
    message = await folder.next_to(email)
    code = code_in(message)
    await client.post("/v1/auth/password-reset", json={"email": email})
    reset = await folder.next_to(email)
    reset_code = code_in(reset)
    # The database is shared by the tests of this process: a mail job an earlier
    # test's app left queued may be delivered into this folder by this app's worker.
    ours = [p.name for p in folder.files() if _addressed_to(p, email)]
    assert len(ours) == 2

    def written() -> list[str]:
        return [
            r.__dict__.get("file")
            for r in caplog.records
            if r.name == "phr.mail" and r.getMessage() == "mail written"
        ]

    # The line follows the file's rename: give the delivery task a moment.
    for _ in range(100):
        if all(name in written() for name in ours):
            break
        await asyncio.sleep(0.02)
    assert all(written().count(name) == 1 for name in ours)
    for record in caplog.records:
        text = repr(record.__dict__)
        for secret in (code, reset_code, code.replace("-", ""), reset_code.replace("-", "")):
            assert secret not in text
        assert email not in text
        assert str(message["Subject"]) not in text


async def test_reset_through_the_eml_default(client, data_dir):
    folder = EmlFolder(data_dir / "mail")
    patient = await register_patient(client, mailbox=folder)
    await client.post("/v1/auth/password-reset", json={"email": patient.email})
    code = await folder.next_code(patient.email)
    new = new_password()
    response = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"email": patient.email, "code": code, "newPassword": new},
    )
    assert response.status_code == 204
    login = await client.post("/v1/auth/login", json={"email": patient.email, "password": new})
    assert login.status_code == 200
    changed = await folder.next_to(patient.email)
    assert "password was changed" in str(changed["Subject"]).lower()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_mail_queued_during_an_smtp_outage_is_sent_by_the_worker_later(
    settings, superuser_conn
):
    """The message is a job committed with the registration: the first try fails
    (no server), the worker's retry delivers it once the server is back."""
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from infra.background_jobs import build_worker
    from infra.bootstrap import close_services, open_services

    port = free_port()
    down = msgspec.structs.replace(settings, smtp_url=f"smtp://127.0.0.1:{port}?tls=none")
    email = new_email()
    async with AsyncTestClient(app=create_app(down), base_url="http://testserver.local") as app:
        response = await app.post(
            "/v1/auth/register", json={"email": email, "password": new_password()}
        )
        assert response.status_code == 202
        for _ in range(200):
            row = await superuser_conn.fetchrow(
                "SELECT id, attempts, last_error, done_at FROM job "
                "WHERE kind = 'mail.send' ORDER BY id DESC LIMIT 1"
            )
            if row and row["last_error"]:
                break
            await asyncio.sleep(0.05)
        assert row["attempts"] == 1 and row["done_at"] is None and row["last_error"]

    server = SmtpServer(port).start()
    try:
        await superuser_conn.execute("UPDATE job SET run_at = now() WHERE id = $1", row["id"])
        services = await open_services(down, down.database_url)
        try:
            ran = await build_worker(services).run_pending()
        finally:
            await close_services(services)
        assert ran >= 1
        assert code_in(await server.next_to(email))
        assert await superuser_conn.fetchval("SELECT done_at FROM job WHERE id = $1", row["id"])
    finally:
        server.stop()


def _addressed_to(path, address: str) -> bool:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    return str(message["To"]).lower() == address.lower()
