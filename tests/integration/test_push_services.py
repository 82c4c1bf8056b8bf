"""APNs and FCM adapters against local fakes that check what the real services
check (tests/push_fakes.py), through registration, the outbox and the worker's
dispatcher: delivered, removed when the service says the token is gone, retried
on 429 honouring Retry-After."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import AsyncTestClient

from api.app import create_app
from domain.clock import FixedClock
from domain.notifications.rules import new_sign_in
from infra.bootstrap import close_services, open_services
from tests.conftest import register_patient, settings_for
from tests.push_fakes import FakeApns, FakeFcm, LocalCa, quota_exceeded

TOPIC = "org.example.phr"


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
async def apns(tmp_path, monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "AuthKey_ABC123DEFG.p8").write_bytes(_pem(key))
    ca = LocalCa(tmp_path / "tls")
    fake = await FakeApns(key.public_key(), "ABC123DEFG", "TEAM123456", TOPIC, ca).start()
    monkeypatch.setenv("PHR_APNS_KEY_FILE", str(tmp_path / "AuthKey_ABC123DEFG.p8"))
    monkeypatch.setenv("PHR_APNS_KEY_ID", "ABC123DEFG")
    monkeypatch.setenv("PHR_APNS_TEAM_ID", "TEAM123456")
    monkeypatch.setenv("PHR_APNS_TOPIC", TOPIC)
    monkeypatch.setenv("PHR_APNS_URL", fake.url)
    monkeypatch.setenv("PHR_APNS_CA_FILE", str(ca.ca_file))
    yield fake
    await fake.stop()


@pytest.fixture
def fcm(tmp_path, monkeypatch):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = FakeFcm(key.public_key(), "phr@phr-test.iam.gserviceaccount.com", "phr-test").start()
    account = {
        "type": "service_account",
        "project_id": "phr-test",
        "private_key_id": "k1",
        "private_key": _pem(key).decode(),
        "client_email": fake.client_email,
        "token_uri": f"{fake.url}/token",
    }
    (tmp_path / "service-account.json").write_text(json.dumps(account))
    monkeypatch.setenv("PHR_FCM_SERVICE_ACCOUNT_FILE", str(tmp_path / "service-account.json"))
    monkeypatch.setenv("PHR_FCM_URL", fake.url)
    yield fake
    fake.stop()


@pytest.fixture
async def world(database_dsn, data_dir):
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


async def register(client, patient, kind: str, token: str) -> dict:
    response = await client.post(
        "/v1/devices", json={"kind": kind, "token": token, "name": "Phone"}, headers=patient.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def notify(services, patient) -> UUID:
    (added,) = await services.notifier.emit(
        [(UUID(patient.id), new_sign_in(uuid4().bytes * 2, "Test"))]
    )
    return added


async def statuses(services, notification: UUID) -> list[tuple[str, int, str | None]]:
    async with services.database.transaction() as conn:
        rows = await conn.fetch(
            "SELECT status, attempts, last_error, due_at FROM notification_delivery "
            "WHERE notification_id = $1",
            notification,
        )
    return [(r["status"], r["attempts"], r["last_error"]) for r in rows]


async def devices(client, patient) -> list[dict]:
    return (await client.get("/v1/devices", headers=patient.headers)).json()


async def test_apns_delivers_over_http2_with_a_provider_token(world, apns):
    client, services, _ = world
    patient = await register_patient(client)
    token = secrets.token_hex(32)
    apns.known_tokens.add(token)
    await register(client, patient, "apns", token)
    first, second = await notify(services, patient), await notify(services, patient)
    assert await services.push_dispatcher.run_once() == 2
    assert not apns.errors, apns.errors
    assert [m["headers"]["apns-collapse-id"] for m in apns.received] == [first.hex, second.hex]
    message = apns.received[0]
    assert message["headers"]["apns-topic"] == TOPIC
    assert message["payload"] == {
        "aps": {"alert": {"title": "You have a new notification"}, "sound": "default"},
        "notificationId": str(first),
        "kind": "new-sign-in",
    }
    assert len(set(apns.provider_tokens)) == 1, "the provider token is reused"
    assert [s[0] for s in await statuses(services, first)] == ["delivered"]


@pytest.mark.parametrize(("reason", "setup"), [("BadDeviceToken", "unknown"), ("Unregistered", "unregistered")])  # fmt: skip
async def test_apns_gone_tokens_remove_the_registration(world, apns, reason, setup):
    client, services, _ = world
    patient = await register_patient(client)
    token = secrets.token_hex(32)
    if setup == "unregistered":
        apns.unregistered.add(token)
    await register(client, patient, "apns", token)
    notification = await notify(services, patient)
    await services.push_dispatcher.run_once()
    assert await devices(client, patient) == []
    ((status, _, error),) = await statuses(services, notification)
    assert status == "gone" and error == reason


async def test_apns_too_many_requests_is_retried_later(world, apns):
    client, services, clock = world
    patient = await register_patient(client)
    token = secrets.token_hex(32)
    apns.known_tokens.add(token)
    apns.script = [(429, "TooManyRequests")]
    await register(client, patient, "apns", token)
    notification = await notify(services, patient)
    assert await services.push_dispatcher.run_once() == 1
    assert await statuses(services, notification) == [("pending", 1, "TooManyRequests")]
    clock.advance(hours=1)
    assert await services.push_dispatcher.run_once() == 1
    assert [s[0] for s in await statuses(services, notification)] == ["delivered"]
    assert len(apns.received) == 1


async def test_the_fake_is_tls_with_h2_by_alpn_and_refuses_anything_else(apns):
    """What the adapter's success above went through: a TLS handshake against
    the test's CA (an untrusted client fails it) that settles on h2 (an
    HTTP/1.1 client is dropped)."""
    import ssl

    import httpx

    trusted = ssl.create_default_context(cafile=str(apns.ca.ca_file))
    async with httpx.AsyncClient(verify=trusted) as http1:
        with pytest.raises(httpx.HTTPError):
            await http1.post(f"{apns.url}/3/device/{'0' * 64}", content=b"{}")
    assert apns.errors and apns.errors[0].startswith("not HTTP/2")

    async with httpx.AsyncClient(http1=False, http2=True) as untrusting:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.post(f"{apns.url}/3/device/{'0' * 64}", content=b"{}")

    apns.errors.clear()
    async with httpx.AsyncClient(http1=False, http2=True, verify=trusted) as h2_client:
        response = await h2_client.post(f"{apns.url}/3/device/{'0' * 64}", content=b"{}")
    assert response.http_version == "HTTP/2"
    assert response.status_code == 403 and response.json()["reason"] == "MissingProviderToken"
    assert not apns.errors, apns.errors


async def test_fcm_delivers_with_an_oauth_token_and_collapse_key(world, fcm):
    client, services, _ = world
    patient = await register_patient(client)
    fcm.known_tokens.add("fcm-token-1")
    await register(client, patient, "fcm", "fcm-token-1")
    first, second = await notify(services, patient), await notify(services, patient)
    assert await services.push_dispatcher.run_once() == 2
    assert not fcm.errors, fcm.errors
    assert fcm.token_requests == 1, "the access token is reused until it expires"
    message = fcm.received[0]
    assert message["token"] == "fcm-token-1"
    assert message["android"]["collapse_key"] == first.hex
    assert message["data"] == {"notificationId": str(first), "kind": "new-sign-in"}
    assert message["notification"] == {"title": "You have a new notification"}
    assert [s[0] for s in await statuses(services, second)] == ["delivered"]


async def test_fcm_unregistered_removes_and_quota_waits_for_retry_after(world, fcm):
    client, services, clock = world
    patient = await register_patient(client)
    fcm.unregistered.add("stale")
    fcm.known_tokens.add("live")
    await register(client, patient, "fcm", "stale")
    notification = await notify(services, patient)
    await services.push_dispatcher.run_once()
    assert await devices(client, patient) == []
    assert (await statuses(services, notification))[0][:2] == ("gone", 1)

    await register(client, patient, "fcm", "live")
    fcm.script = [quota_exceeded(600)]
    notification = await notify(services, patient)
    assert await services.push_dispatcher.run_once() == 1
    async with services.database.transaction() as conn:
        due = await conn.fetchval(
            "SELECT due_at FROM notification_delivery WHERE notification_id = $1", notification
        )
    assert (due - clock.now()).total_seconds() >= 600
    clock.advance(seconds=599)
    assert await services.push_dispatcher.run_once() == 0
    clock.advance(seconds=2 + 3600)
    assert await services.push_dispatcher.run_once() == 1
    assert [s[0] for s in await statuses(services, notification)] == ["delivered"]


async def test_fcm_invalid_token_is_dead_lettered_not_retried(world, fcm):
    client, services, _ = world
    patient = await register_patient(client)
    await register(client, patient, "fcm", "not-a-real-token")
    notification = await notify(services, patient)
    await services.push_dispatcher.run_once()
    ((status, attempts, error),) = await statuses(services, notification)
    assert status == "dead" and attempts == 1 and "INVALID_ARGUMENT" in error
