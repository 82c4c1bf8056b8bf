"""The SMTP server or a push service down: account mail and pushes wait in their
outboxes (the job table, the notification deliveries) and go out, each once,
when the service is back on the same address. The app runs its own worker, as
`phr serve` does, with short retry backoffs so the test waits seconds, not
minutes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.conftest import register_patient, settings_for
from tests.faults.waiting import eventually
from tests.hospital_support import linked, new_hospital
from tests.mail_support import SmtpServer, code_in
from tests.push_receivers import WebPushReceiver
from tests.records_support import bundle, observation

BASE_URL = "http://testserver.local"


def _lines(caplog, start: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(start)]


async def test_mail_waits_in_the_outbox_while_smtp_is_down_and_goes_out_once_it_returns(
    database_dsn, data_dir, superuser_conn, caplog
):
    caplog.set_level(logging.WARNING)
    server = SmtpServer().start()
    port = server.port
    settings = settings_for(
        database_dsn,
        data_dir,
        {"PHR_WORKER": "on", "SMTP_URL": server.url, "PHR_JOB_RETRY_BASE_SECONDS": "0.5"},
    )
    async with AsyncTestClient(app=create_app(settings), base_url=BASE_URL) as client:
        await register_patient(client, mailbox=server)  # mail flows while it is up
        mark = await superuser_conn.fetchval("SELECT coalesce(max(id), 0) FROM job")
        server.stop()

        emails = [f"outage-{uuid.uuid4().hex[:10]}@example.org" for _ in range(3)]
        password = f"outage kettle {uuid.uuid4().hex[:8]} orchard"
        for email in emails:
            made = await client.post(
                "/v1/auth/register", json={"email": email, "password": password}
            )
            assert made.status_code == 202, made.text  # the outage is not the user's

        async def waiting() -> list:
            rows = await superuser_conn.fetch(
                "SELECT attempts, last_error, done_at, failed_at FROM job "
                "WHERE kind = 'mail.send' AND id > $1",
                mark,
            )
            tried = len(rows) == len(emails) and all(r["attempts"] >= 2 for r in rows)
            return rows if tried else []

        # Tried (by the request's express delivery, then by the worker's retries),
        # failed, and kept: none done, none given up.
        rows = await eventually(waiting, 30, "every message tried twice against the dead server")
        assert all(r["last_error"] and r["done_at"] is None for r in rows), rows
        assert all(r["failed_at"] is None for r in rows), rows
        assert all("Connect call failed" in r["last_error"] for r in rows), rows
        # Six failed tries and more: one line for the outage, no traceback per try.
        began = _lines(caplog, "smtp unavailable (unreachable)")
        assert len(began) == 1, [r.getMessage() for r in began]
        assert not _lines(caplog, "job failed"), [r.getMessage() for r in caplog.records]

        back = SmtpServer(port).start()
        try:
            for email in emails:
                code = code_in(await back.next_to(email, timeout=60))
                verified = await client.post(
                    "/v1/auth/verify-email", json={"email": email, "code": code}
                )
                assert verified.status_code == 204, verified.text

            async def all_done() -> bool:
                return await superuser_conn.fetchval(
                    "SELECT bool_and(done_at IS NOT NULL) FROM job "
                    "WHERE kind = 'mail.send' AND id > $1",
                    mark,
                )

            await eventually(all_done, 10, "every mail job marked done")
            await asyncio.sleep(1.0)  # a second send, if any, would land by now
            for email in emails:
                assert len(back.to(email)) == 1, f"{email}: {len(back.to(email))} messages"
            ended = _lines(caplog, "smtp available again (it answers again)")
            # Every message failed once at least (its last_error says so); a second try
            # may still have been on its way when the server came back.
            assert len(ended) == 1 and ended[0].failedRequests >= len(emails), [
                r.getMessage() for r in ended
            ]
            assert "job attempt(s) failed" in ended[0].getMessage()
        finally:
            back.stop()


@pytest.fixture
def fast_push_retries(monkeypatch):
    monkeypatch.setenv("PHR_WEBPUSH_ENDPOINT_ALLOW", "http://127.0.0.1:*")
    monkeypatch.setenv("PHR_PUSH_RETRY_BASE_SECONDS", "0.5")


async def test_pushes_wait_while_the_push_service_is_down_and_go_out_once_it_returns(
    database_dsn, data_dir, superuser_conn, fast_push_retries, caplog
):
    caplog.set_level(logging.WARNING)
    receiver = WebPushReceiver().start()
    port = receiver.server.server_address[1]
    settings = settings_for(database_dsn, data_dir, {"PHR_WORKER": "on"})
    async with AsyncTestClient(app=create_app(settings), base_url=BASE_URL) as client:
        patient = await register_patient(client)
        hospital = await new_hospital(client, settings, name="Outbox General")
        await linked(client, patient, hospital, "MRN-OUTBOX")
        device = await client.post(
            "/v1/devices",
            json={"kind": "webpush", "subscription": receiver.subscription(), "name": "Firefox"},
            headers=patient.headers,
        )
        assert device.status_code == 201, device.text
        key = await client.get("/v1/devices/webpush-key", headers=patient.headers)
        receiver.expected_key = key.json()["applicationServerKey"]

        pushed = await hospital.push("MRN-OUTBOX", bundle(observation("before-1", value=70)))
        assert pushed.status_code == 200, pushed.text
        assert len(await receiver.wait_for(1)) == 1, (receiver.errors, receiver.attempts)
        receiver.stop()

        for n in range(3):
            result = observation(f"during-{n}", value=71 + n, when=f"2024-06-0{n + 1}T08:00:00Z")
            pushed = await hospital.push("MRN-OUTBOX", bundle(result))
            assert pushed.status_code == 200, pushed.text

        async def waiting() -> list:
            rows = await superuser_conn.fetch(
                "SELECT notification_id, status, attempts, last_error FROM notification_delivery "
                "WHERE patient_id = $1 AND status <> 'delivered'",
                UUID(patient.id),
            )
            tried = len(rows) == 3 and all(r["attempts"] >= 2 for r in rows)
            return rows if tried else []

        rows = await eventually(waiting, 30, "every push tried twice against the dead service")
        assert all(r["status"] == "pending" and r["last_error"] for r in rows), rows
        service = f"web push service 127.0.0.1:{port}"
        # Two tries or more per push, one line: the outage, not each try.
        began = _lines(caplog, f"{service} unavailable")
        assert len(began) == 1, [r.getMessage() for r in began]
        assert "pushes wait in the outbox" in began[0].getMessage()
        assert _lines(caplog, f"{service} available again") == []
        waiting_ids = {r["notification_id"].hex for r in rows}

        back = WebPushReceiver(
            port=port,
            ua_private=receiver.ua_private,
            auth=receiver.auth,
            expected_key=receiver.expected_key,
        ).start()
        try:
            got = await back.wait_for(3, timeout=60)
            assert len(got) == 3 and not back.errors, (back.errors, len(got))

            async def all_delivered() -> bool:
                statuses = await superuser_conn.fetch(
                    "SELECT status FROM notification_delivery WHERE patient_id = $1",
                    UUID(patient.id),
                )
                return len(statuses) == 4 and all(s["status"] == "delivered" for s in statuses)

            await eventually(all_delivered, 10, "every delivery recorded as delivered")
            await asyncio.sleep(1.0)  # a second send, if any, would land by now
            assert len(back.received) == 3, "a push went out twice"
            assert set(back.unique()) == waiting_ids
            [ended] = _lines(caplog, f"{service} available again")
            # Every push failed once at least (its last_error says so); a second try
            # may still have been on its way when the service came back.
            assert ended.failedRequests >= len(waiting_ids), ended.getMessage()
            assert "push attempt(s) failed" in ended.getMessage()
            assert len(_lines(caplog, f"{service} unavailable")) == 1
        finally:
            back.stop()
