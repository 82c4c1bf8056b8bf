"""Notifications through HTTP against a real PostgreSQL: a hospital's push makes
one inbox notification and one Web Push at a local receiver that verifies VAPID
and decrypts the payload itself; the outbox's retries, removal on 410, quiet
hours, dead letters; the refill scan; preferences; devices and their SSRF guard."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from domain.accounts.tokens import refresh_token_hash
from domain.clock import FixedClock
from domain.notifications.rules import new_sign_in
from infra.bootstrap import close_services, open_services
from tests.conftest import register_patient, scratch_database, settings_for
from tests.hospital_support import linked, new_hospital
from tests.push_receivers import WebPushReceiver
from tests.records_support import bundle, observation

PROBLEM = "application/problem+json"


@pytest.fixture
def allow_local_push(monkeypatch):
    monkeypatch.setenv("PHR_WEBPUSH_ENDPOINT_ALLOW", "http://127.0.0.1:*")


@pytest.fixture
def receiver():
    started = WebPushReceiver().start()
    yield started
    started.stop()


def lab(source_id: str, value: float, *, high: float | None = None, flag: str | None = None):
    extra: dict[str, Any] = {
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
    }
    if high is not None:
        extra["referenceRange"] = [{"low": {"value": 0}, "high": {"value": high}}]
    if flag is not None:
        extra["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag}]}]  # fmt: skip
    return observation(source_id, code="2345-7", display="Glucose", value=value, unit="mg/dL", **extra)  # fmt: skip


async def inbox(client, patient, **params) -> dict:
    response = await client.get("/v1/notifications", params=params, headers=patient.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def register_webpush(client, patient, receiver, name="browser") -> dict:
    response = await client.post(
        "/v1/devices",
        json={"kind": "webpush", "subscription": receiver.subscription(name), "name": "Firefox"},
        headers=patient.headers,
    )
    assert response.status_code == 201, response.text
    key = await client.get("/v1/devices/webpush-key", headers=patient.headers)
    receiver.expected_key = key.json()["applicationServerKey"]
    return response.json()


# --- end to end: hospital push -> inbox -> Web Push -------------------------


@pytest.fixture
async def worker_client(database_dsn, data_dir, allow_local_push):
    """The app with its background worker running, as `phr serve` runs it."""
    settings = settings_for(database_dsn, data_dir, {"PHR_WORKER": "on"})
    assert settings.worker_enabled
    async with AsyncTestClient(
        app=create_app(settings), base_url="http://testserver.local"
    ) as client:
        yield client, settings


async def test_pushed_results_notify_once_in_the_inbox_and_once_at_the_browser(
    worker_client, receiver
):
    client, settings = worker_client
    patient = await register_patient(client)
    hospital = await new_hospital(client, settings, name="Ruijin Hospital")
    await linked(client, patient, hospital, "MRN-1")
    await register_webpush(client, patient, receiver)

    results = bundle(
        lab("glu-1", 250, high=99),  # outside its reference range
        lab("glu-2", 80, high=99),
        lab("k-1", 6.1, flag="H"),  # flagged high by the lab
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/x"},
            "code": {"text": "Diabetes"},
        },
    )
    response = await hospital.push("MRN-1", results)
    assert response.status_code == 200, response.text

    page = await inbox(client, patient)
    assert len(page["items"]) == 1, "one notification per delivery, not per result"
    (item,) = page["items"]
    assert item["kind"] == "new-results" and item["read"] is False
    assert item["params"]["count"] == 3 and item["params"]["abnormal"] == 2
    assert "Ruijin Hospital" in item["body"] and "250" not in item["body"]
    assert "Glucose" not in item["body"]
    me = (await client.get("/v1/me", headers=patient.headers)).json()
    assert me["unreadNotifications"] == 1

    # The app's own worker delivers it.
    got = await receiver.wait_for(1)
    assert len(got) == 1, (receiver.errors, receiver.attempts)
    (received,) = got
    assert not receiver.errors, receiver.errors
    assert received.payload == {
        "title": "You have a new notification",
        "notificationId": item["id"],
        "kind": "new-results",
    }
    assert received.headers["topic"] == item["id"].replace("-", "")
    # Exactly those three fields (no hospital, no result, no value), and only the
    # protocol's own headers.
    assert set(received.headers) <= {
        "host", "accept", "accept-encoding", "connection", "user-agent", "authorization",
        "content-encoding", "content-type", "content-length", "ttl", "urgency", "topic",
    }  # fmt: skip

    # The same delivery again (same webhook-id) and the same content in a new
    # delivery tell nothing new.
    again = await hospital.push("MRN-1", results)
    assert again.status_code == 200 and again.json()["unchanged"] == 4
    assert len((await inbox(client, patient))["items"]) == 1

    # Read it: the unread count follows.
    read = await client.post(f"/v1/notifications/{item['id']}/read", headers=patient.headers)
    assert read.status_code == 204
    assert (await client.get("/v1/me", headers=patient.headers)).json()["unreadNotifications"] == 0
    assert (await inbox(client, patient, unread="true"))["items"] == []
    await asyncio.sleep(1.5)
    assert len(receiver.received) == 1


@pytest.fixture
async def worker_without_sweep(database_dsn, data_dir, allow_local_push, monkeypatch):
    """The app with its worker, whose sweep of the outbox would come only after
    ten minutes: a push that leaves sooner was woken by its own commit."""
    import infra.background_jobs

    monkeypatch.setattr(infra.background_jobs, "DELIVERY_SWEEP", timedelta(minutes=10))
    settings = settings_for(database_dsn, data_dir, {"PHR_WORKER": "on"})
    async with AsyncTestClient(
        app=create_app(settings), base_url="http://testserver.local"
    ) as client:
        yield client


async def test_a_push_leaves_when_its_notification_commits_not_at_a_sweep(
    worker_without_sweep, receiver
):
    client = worker_without_sweep
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    await asyncio.sleep(0.5)  # the worker's first sweep (at start) is over
    ua = {"User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)"}
    login = {"email": patient.email, "password": patient.password}
    started = time.monotonic()
    assert (await client.post("/v1/auth/login", json=login, headers=ua)).status_code == 200
    got = await receiver.wait_for(1, timeout=60.0)
    took = time.monotonic() - started
    assert len(got) == 1, (receiver.errors, receiver.attempts)
    (item,) = (await inbox(client, patient))["items"]
    assert got[0].payload["notificationId"] == item["id"] and item["kind"] == "new-sign-in"
    assert took < 60.0, f"delivered after {took:.1f} s"


async def test_a_changed_result_notifies_again_and_non_results_do_not(client, settings, patient):
    hospital = await new_hospital(client, settings)
    await linked(client, patient, hospital, "MRN-2")
    await hospital.push("MRN-2", bundle(lab("glu-1", 90, high=99)))
    changed = {**lab("glu-1", 95, high=99), "meta": {"lastUpdated": "2030-01-01T00:00:00Z"}}
    response = await hospital.push("MRN-2", bundle(changed))
    assert response.json()["updated"] == 1
    preliminary = {**lab("glu-9", 90), "status": "preliminary"}
    await hospital.push("MRN-2", bundle(preliminary))
    items = (await inbox(client, patient))["items"]
    assert [i["kind"] for i in items] == ["new-results", "new-results"]


# --- inbox, locale, paging, read-all, isolation ------------------------------


async def test_inbox_pages_in_chinese_and_read_all(client, services, patient, superuser_conn):
    # The profile's language is set by the accounts API; set directly here.
    await superuser_conn.execute(
        "UPDATE patient SET locale = 'zh-Hans' WHERE id = $1::uuid", patient.id
    )
    pid = UUID(patient.id)
    for n in range(5):
        await services.notifier.share_accessed(pid, uuid4(), f"label {n}", "Dr. Li")
    first = await inbox(client, patient, limit=4)
    assert len(first["items"]) == 4 and first["nextCursor"]
    second = await inbox(client, patient, limit=10, cursor=first["nextCursor"])
    assert len(second["items"]) == 6 and second["nextCursor"] is None
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 10
    assert all("分享" in i["title"] for i in first["items"])
    bad = await client.get("/v1/notifications?cursor=nope!", headers=patient.headers)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)

    marked = await client.post("/v1/notifications/read-all", headers=patient.headers)
    assert marked.json() == {"marked": 10}
    assert (await inbox(client, patient, unread="true"))["items"] == []


async def test_another_patients_notification_and_device_are_not_found(
    client, services, patient, other_patient, receiver, allow_local_push
):
    await services.notifier.share_accessed(UUID(other_patient.id), uuid4(), "x", "Dr. Wu")
    theirs = (await inbox(client, other_patient))["items"][0]["id"]
    response = await client.post(f"/v1/notifications/{theirs}/read", headers=patient.headers)
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
    assert (await inbox(client, other_patient, unread="true"))["items"][0]["id"] == theirs
    device = await register_webpush(client, other_patient, receiver)
    response = await client.delete(f"/v1/devices/{device['id']}", headers=patient.headers)
    assert response.status_code == 404
    assert len((await client.get("/v1/devices", headers=other_patient.headers)).json()) == 1
    audit = (await client.get("/v1/audit?limit=50", headers=patient.headers)).json()["items"]
    refused = [(e["action"], e["outcome"]) for e in audit if e["outcome"] == "denied"]
    assert ("notification.read", "denied") in refused and ("device.removed", "denied") in refused


# --- shares and sign-ins (domain ports others call) --------------------------


async def test_share_opened_once_and_each_new_recipient_once(client, services, patient):
    share = uuid4()
    pid = UUID(patient.id)
    assert len(await services.notifier.share_accessed(pid, share, "For Dr. Wang", "Dr. Wang")) == 2
    assert await services.notifier.share_accessed(pid, share, "For Dr. Wang", "dr. wang ") == []
    added = await services.notifier.share_accessed(pid, share, "For Dr. Wang", "Dr. Zhao")
    assert len(added) == 1
    kinds = sorted(i["kind"] for i in (await inbox(client, patient))["items"])
    assert kinds == ["share-opened", "share-recipient", "share-recipient"]


async def test_sign_in_from_a_new_device_notifies(client):
    patient = await register_patient(client)
    login = {"email": patient.email, "password": patient.password}
    assert (await inbox(client, patient))["items"] == [], "the first device is no news"
    await client.post("/v1/auth/login", json=login)
    assert (await inbox(client, patient))["items"] == []
    ua = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"}
    await client.post("/v1/auth/login", json=login, headers=ua)
    await client.post("/v1/auth/login", json=login, headers=ua)
    (item,) = (await inbox(client, patient))["items"]
    assert item["kind"] == "new-sign-in" and "iPhone" in item["body"]


async def test_a_new_device_sign_in_notifies_in_the_sign_in_transaction(quiet, receiver):
    """The notification and its push delivery commit with the sign-in (the
    transactional outbox), not in a transaction of their own after it: the rows
    carry the same transaction id as the sign-in's session."""
    client, services, _ = quiet
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    ua = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15"}
    login = {"email": patient.email, "password": patient.password}
    response = await client.post("/v1/auth/login", json=login, headers=ua)
    assert response.status_code == 200
    (item,) = (await inbox(client, patient))["items"]
    assert item["kind"] == "new-sign-in"
    token_hash = refresh_token_hash(response.json()["refreshToken"])
    async with services.database.transaction() as conn:
        row = await conn.fetchrow(
            """
            SELECT n.xmin::text AS notification,
                   (SELECT array_agg(DISTINCT d.xmin::text) FROM notification_delivery d
                    WHERE d.notification_id = n.id) AS deliveries,
                   (SELECT t.xmin::text FROM refresh_token t
                    WHERE t.patient_id = $2 AND t.token_hash = $3) AS sign_in
            FROM notification n WHERE n.id = $1::uuid AND n.patient_id = $2
            """,
            item["id"],
            UUID(patient.id),
            token_hash,
        )
    assert row["sign_in"] is not None
    assert row["notification"] == row["sign_in"], "written after the sign-in committed"
    assert row["deliveries"] == [row["sign_in"]]
    # And it is sent from there (leaving nothing pending for the tests after this one).
    assert await services.push_dispatcher.run_once() >= 1
    (received,) = await receiver.wait_for(1)
    assert received.payload["notificationId"] == item["id"]


# --- preferences -----------------------------------------------------------


async def test_preferences_round_trip_and_turn_kinds_off(client, services, patient):
    default = (await client.get("/v1/me/notification-preferences", headers=patient.headers)).json()
    assert default["refillLeadDays"] == 3 and default["abnormalResults"] == "immediate"
    wanted = {
        "kinds": {"share-opened": False},
        "quietHours": {"start": "22:00", "end": "07:00"},
        "refillLeadDays": 5,
        "abnormalResults": "delayed",
        "abnormalDelayHours": 48,
    }
    response = await client.put(
        "/v1/me/notification-preferences", json=wanted, headers=patient.headers
    )
    assert response.status_code == 200, response.text
    got = (await client.get("/v1/me/notification-preferences", headers=patient.headers)).json()
    assert got == wanted
    await services.notifier.share_accessed(UUID(patient.id), uuid4(), "x", "Dr. Wu")
    assert [i["kind"] for i in (await inbox(client, patient))["items"]] == ["share-recipient"]
    for bad in (
        {"refillLeadDays": 99},
        {"quietHours": {"start": "25:00", "end": "07:00"}},
        {"kinds": {"spam": True}},
        {"surprise": 1},
    ):
        response = await client.put(
            "/v1/me/notification-preferences", json=bad, headers=patient.headers
        )
        assert response.status_code == 400 or response.status_code == 422, bad
        assert response.headers["content-type"].startswith(PROBLEM)


# --- devices and the SSRF guard ---------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9/push",  # not allowed without PHR_WEBPUSH_ENDPOINT_ALLOW
        "https://169.254.169.254/latest/meta-data",
        "https://evil.example/push",
        "https://fcm.googleapis.com.evil.example/x",
        "https://user:pw@fcm.googleapis.com/fcm/send/x",
        "https://fcm.googleapis.com:8443/fcm/send/x",
        "ftp://fcm.googleapis.com/x",
    ],
)
async def test_push_endpoints_off_the_public_services_are_refused(client, patient, endpoint):
    subscription = {"endpoint": endpoint, "keys": {"p256dh": "BAAA", "auth": "AAAA"}}
    response = await client.post(
        "/v1/devices",
        json={"kind": "webpush", "subscription": subscription},
        headers=patient.headers,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert (await client.get("/v1/devices", headers=patient.headers)).json() == []


async def test_public_push_services_are_accepted_and_unconfigured_kinds_refused(client, patient):
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGx",
        "https://wns2-bl2p.notify.windows.com/w/?token=abc",
    ):
        subscription = {"endpoint": endpoint, "keys": {"p256dh": "BAAA", "auth": "AAAA"}}
        response = await client.post(
            "/v1/devices",
            json={"kind": "webpush", "subscription": subscription},
            headers=patient.headers,
        )
        assert response.status_code == 201, response.text
    assert len((await client.get("/v1/devices", headers=patient.headers)).json()) == 4
    for kind in ("apns", "fcm"):
        response = await client.post(
            "/v1/devices", json={"kind": kind, "token": "abc123"}, headers=patient.headers
        )
        assert response.status_code == 422
        assert "not configured" in response.json()["detail"]
    # One shape per kind, declared in the contract (oneOf by `kind`): a token on a
    # Web Push registration is a field that shape does not have (400 naming it).
    wrong_shape = await client.post(
        "/v1/devices", json={"kind": "webpush", "token": "abc"}, headers=patient.headers
    )
    assert wrong_shape.status_code == 400
    assert "token" in wrong_shape.json()["errors"][0]["message"]
    no_token = await client.post("/v1/devices", json={"kind": "fcm"}, headers=patient.headers)
    assert no_token.status_code == 400
    assert "token" in no_token.json()["errors"][0]["message"]


# --- the outbox: retries, removal, quiet hours, dead letters, crashes ---------


@pytest.fixture
def own_database(admin_dsn: str):
    """These tests count what one dispatcher run delivers: deliveries other tests
    left pending in the run's shared database would be claimed first."""
    with scratch_database(admin_dsn, prefix="phr_push") as dsn:
        yield dsn


@pytest.fixture
async def quiet(own_database, data_dir, monkeypatch):
    """An app without its worker, and the service's adapters on a clock the test
    moves: the test is the worker."""
    database_dsn = own_database
    monkeypatch.setenv("PHR_WEBPUSH_ENDPOINT_ALLOW", "http://127.0.0.1:*")
    monkeypatch.setenv("PHR_PUSH_RETRY_BASE_SECONDS", "10")
    monkeypatch.setenv("PHR_PUSH_MAX_ATTEMPTS", "4")
    settings = settings_for(database_dsn, data_dir)
    clock = FixedClock(datetime.now(UTC))
    services = await open_services(settings, database_dsn, clock=clock)
    client = AsyncTestClient(
        app=create_app(settings, clock=clock), base_url="http://testserver.local"
    )
    await client.__aenter__()
    try:
        yield client, services, clock
    finally:
        await client.__aexit__(None, None, None)
        await close_services(services)


async def _notify(services, patient) -> str:
    """A notification as any feature emits one (a sign-in from a new device)."""
    (added,) = await services.notifier.emit(
        [(UUID(patient.id), new_sign_in(uuid4().bytes * 2, "Test"))]
    )
    return str(added)


async def delivery_rows(services, notification_id: str) -> list[dict]:
    async with services.database.transaction() as conn:
        rows = await conn.fetch(
            "SELECT status, attempts, due_at, last_error FROM notification_delivery "
            "WHERE notification_id = $1::uuid",
            notification_id,
        )
    return [dict(r) for r in rows]


async def test_three_failures_then_success_is_delivered_with_backoff(quiet, receiver):
    client, services, clock = quiet
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    receiver.script = [
        (503, {}, b""),
        (429, {"Retry-After": "120"}, b""),
        (500, {}, b""),
    ]
    notification = await _notify(services, patient)
    due = []
    for _ in range(3):
        assert await services.push_dispatcher.run_once() == 1
        (row,) = await delivery_rows(services, notification)
        assert row["status"] == "pending"
        due.append((row["due_at"] - clock.now()).total_seconds())
        assert await services.push_dispatcher.run_once() == 0, "not before its backoff"
        clock.advance(seconds=due[-1] + 0.001)
    # Backoff grows (full jitter between half and all of 10 s * 2^n) and the 429
    # waits at least its Retry-After.
    assert 5 <= due[0] <= 10 and due[1] >= 120 and 20 <= due[2] <= 40
    assert await services.push_dispatcher.run_once() == 1
    (row,) = await delivery_rows(services, notification)
    assert row["status"] == "delivered" and row["attempts"] == 4
    assert len(receiver.attempts) == 4 and len(receiver.received) == 1


async def test_410_removes_the_registration(quiet, receiver):
    client, services, _ = quiet
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    receiver.script = [(410, {}, b"push subscription has unsubscribed or expired.")]
    notification = await _notify(services, patient)
    await _notify(services, patient)  # a second one waiting for the same device
    assert await services.push_dispatcher.run_once() >= 1
    assert (await client.get("/v1/devices", headers=patient.headers)).json() == []
    statuses = [r["status"] for r in await delivery_rows(services, notification)]
    assert statuses == ["gone"]
    assert await services.push_dispatcher.run_once() == 0
    assert receiver.received == []


async def test_bounded_attempts_end_in_the_dead_letters(quiet, receiver):
    client, services, clock = quiet
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    receiver.script = [(500, {}, b"")] * 10
    notification = await _notify(services, patient)
    for _ in range(4):
        assert await services.push_dispatcher.run_once() == 1
        clock.advance(hours=7)
    (row,) = await delivery_rows(services, notification)
    assert row["status"] == "dead" and row["attempts"] == 4
    from api.cli.notifications import dead_letters

    # The operator command connects as the owner (DATABASE_URL), as `phr` does.
    letters = await dead_letters(services.settings, services.settings.database_url, 10)
    assert any(letter["notificationId"] == notification for letter in letters)


async def test_quiet_hours_hold_the_push_but_not_the_inbox(quiet, receiver):
    client, services, clock = quiet
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    # Quiet from an hour ago to an hour from now, in the patient's zone (Shanghai).
    from zoneinfo import ZoneInfo

    local = clock.now().astimezone(ZoneInfo("Asia/Shanghai"))
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=1)).strftime("%H:%M")
    response = await client.put(
        "/v1/me/notification-preferences",
        json={"quietHours": {"start": start, "end": end}},
        headers=patient.headers,
    )
    assert response.status_code == 200
    notification = await _notify(services, patient)
    assert [i["id"] for i in (await inbox(client, patient))["items"]] == [notification]
    assert await services.push_dispatcher.run_once() == 0
    clock.advance(minutes=59)
    assert await services.push_dispatcher.run_once() == 0
    clock.advance(minutes=2)
    assert await services.push_dispatcher.run_once() == 1
    assert len(receiver.received) == 1


async def test_a_worker_killed_mid_send_delivers_after_restart_once_at_the_device(
    client, services, settings, receiver, allow_local_push, monkeypatch
):
    """The sender dies after the push service received the message but before it
    recorded the delivery: after its lease lapses the push is sent again, with the
    same Topic, so the device shows it once."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    receiver.hang_first = True
    notification = await _notify(services, patient)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PHR_DATA_DIR": str(settings.data_dir),
        "PHR_PUBLIC_URL": settings.public_url,
        "PHR_WEBPUSH_ENDPOINT_ALLOW": "http://127.0.0.1:*",
        "PHR_PUSH_LEASE_SECONDS": "5",
    }
    root = Path(__file__).resolve().parents[2]

    def deliver() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", "notifications", "deliver"],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    first = deliver()
    for _ in range(300):
        if receiver.hanging.is_set():
            break
        await asyncio.sleep(0.05)
    assert receiver.hanging.is_set(), first.stderr.read() if first.poll() is not None else "no push"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    receiver.release.set()
    (row,) = await delivery_rows(services, notification)
    assert row["status"] == "pending" and row["attempts"] == 1

    assert await services.push_dispatcher.run_once() == 0, "not before the lease lapses"
    await asyncio.sleep(5.5)
    third = deliver()
    assert third.wait(30) == 0, third.stderr.read()
    (row,) = await delivery_rows(services, notification)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert len(receiver.received) == 2, "at least once: the service got it twice"
    assert list(receiver.unique()) == [UUID(notification).hex], "the device shows it once"


async def test_hostile_input_is_refused_as_problems(client, patient):
    deep = {"kinds": {}}
    node: dict = deep
    for _ in range(3000):
        node["x"] = {}
        node = node["x"]
    for method, url, kwargs in (
        ("PUT", "/v1/me/notification-preferences", {"content": b"[" * 5000 + b"]" * 5000}),
        (
            "PUT",
            "/v1/me/notification-preferences",
            {"json": {"quietHours": {"start": "22:00\x00", "end": "07:00"}}},
        ),
        (
            "POST",
            "/v1/devices",
            {"content": b'{"kind": "webpush", "name": "' + b"a" * 2_000_000 + b'"}'},
        ),
        ("POST", "/v1/devices", {"json": {"kind": "apns", "token": "x\x00y"}}),
        ("POST", "/v1/devices", {"json": {"kind": "carrier-pigeon", "token": "x"}}),
        ("POST", "/v1/notifications/not-a-uuid/read", {}),
        ("GET", "/v1/notifications?limit=100000", {}),
    ):
        headers = {**patient.headers, "content-type": "application/json"}
        response = await client.request(method, url, headers=headers, **kwargs)
        assert 400 <= response.status_code < 500, (url, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith(PROBLEM), url
    for url in ("/v1/notifications", "/v1/medications", "/v1/devices", "/v1/me/notification-preferences"):  # fmt: skip
        response = await client.get(url, headers={"Authorization": "Bearer expired.or.forged"})
        assert response.status_code == 401 and response.headers["content-type"].startswith(PROBLEM)


async def test_abnormal_results_wait_in_inbox_and_push_when_the_patient_asks(quiet, receiver):
    client, services, clock = quiet
    patient = await register_patient(client)
    await register_webpush(client, patient, receiver)
    response = await client.put(
        "/v1/me/notification-preferences",
        json={"abnormalResults": "delayed", "abnormalDelayHours": 24},
        headers=patient.headers,
    )
    assert response.status_code == 200
    from domain.notifications.rules import new_results

    flagged = new_results(uuid4(), "Renji", "d1", [lab("glu", 300, high=99)])
    normal = new_results(uuid4(), "Renji", "d2", [lab("glu", 80, high=99)])
    assert flagged is not None and normal is not None
    await services.notifier.emit([(UUID(patient.id), flagged), (UUID(patient.id), normal)])
    items = (await inbox(client, patient))["items"]
    assert [i["params"]["abnormal"] for i in items] == [0], "only the normal one shows now"
    assert await services.push_dispatcher.run_once() == 1
    clock.advance(hours=24, seconds=1)
    response = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    patient.tokens = response.json()
    assert len((await inbox(client, patient))["items"]) == 2
    assert await services.push_dispatcher.run_once() == 1
    assert len(receiver.received) == 2
