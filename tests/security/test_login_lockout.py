"""Item: a stranger could lock any patient out.

Before: five wrong passwords for someone's email, from anywhere, made the right
password answer 429 for 15 minutes, and behind a reverse proxy (every client had
the proxy's address) 50 failures from anywhere blocked every sign-in. Now failures
are limited per account *and* client address, and per address; per account alone
there are only progressive delays for clients that have themselves been failing,
never a refusal of the owner; the owner is alerted; forwarding headers are believed
from PHR_TRUSTED_PROXIES only. Registration and refresh use the same throttle."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import msgspec
import pytest

from api.client_address import client_address
from tests.app_in_loop import client_from, running
from tests.conftest import register_patient
from tests.security.support import assert_problem

PROXY = "10.9.8.7"


class RecordedAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[UUID, int]] = []

    async def sign_in_under_attack(self, patient_id: UUID, failures: int) -> None:
        self.sent.append((patient_id, failures))


async def started(settings, **changes: Any) -> AsyncIterator[tuple[Any, RecordedAlerts]]:
    from api.app import create_app

    alerts = RecordedAlerts()
    async with running(create_app(msgspec.structs.replace(settings, **changes))) as app:
        # Before the first request builds the sign-in use case around it.
        app.state.services.account_alerts = alerts
        yield app, alerts


@pytest.fixture
async def app(settings):
    async for pair in started(settings, trusted_proxies=(f"{PROXY}/32",)):
        yield pair


@pytest.fixture
async def tight_app(settings):
    async for pair in started(
        settings, registrations_per_hour=3, refresh_failures=3, trusted_proxies=()
    ):
        yield pair


async def login(client, email: str, password: str, **headers: str):
    return await client.post(
        "/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def test_50_failures_from_one_address__owner_elsewhere_still_signs_in(app):
    service, _ = app
    async with client_from(service, "192.0.2.1") as home:
        owner = await register_patient(home)
    async with client_from(service, "198.51.100.66") as attacker:
        statuses = [
            (await login(attacker, owner.email, f"guess {i}")).status_code for i in range(50)
        ]
    assert statuses.count(401) == 5 and set(statuses[5:]) == {429}
    async with client_from(service, "192.0.2.1") as home:
        assert (await login(home, owner.email, owner.password)).status_code == 200


async def test_failing_client__refused_even_with_the_right_password(app):
    service, _ = app
    async with client_from(service, "192.0.2.2") as home:
        owner = await register_patient(home)
    async with client_from(service, "198.51.100.67") as attacker:
        for i in range(5):
            assert (await login(attacker, owner.email, f"guess {i}")).status_code == 401
        response = await login(attacker, owner.email, owner.password)
        # The guesser must not learn that the last guess was right.
        assert_problem(response, 429, "rate-limited")
        assert 1 <= int(response.headers["retry-after"]) <= 900


async def test_failures_spread_over_many_addresses__delays_the_failing_never_the_owner(app):
    service, _ = app
    async with client_from(service, "192.0.2.3") as home:
        owner = await register_patient(home)
    attackers = [client_from(service, f"203.0.113.{i}") for i in range(1, 9)]
    try:
        # Each address's first guess is a non-failing client's: answered (401).
        for attacker in attackers:
            assert (await login(attacker, owner.email, "not it at all")).status_code == 401
        # The account now has 8 failures: a client that has failed waits 2^(8-5) s.
        response = await login(attackers[0], owner.email, "another guess")
        assert_problem(response, 429, "rate-limited")
        assert 1 <= int(response.headers["retry-after"]) <= 2**3 + 1
    finally:
        for attacker in attackers:
            await attacker.aclose()
    # The owner, on a client that has not been failing, is neither delayed nor refused.
    async with client_from(service, "192.0.2.3") as home:
        assert (await login(home, owner.email, owner.password)).status_code == 200


async def test_account_under_attack__owner_alerted_once_per_window(app):
    service, alerts = app
    async with client_from(service, "192.0.2.4") as home:
        owner = await register_patient(home)
    for i in range(1, 8):
        async with client_from(service, f"198.18.0.{i}") as attacker:
            assert (await login(attacker, owner.email, "wrong wrong")).status_code == 401
    assert alerts.sent == [(UUID(owner.id), 5)]
    # Failures on an email with no account alert nobody.
    for i in range(1, 7):
        async with client_from(service, f"198.18.1.{i}") as attacker:
            await login(attacker, f"nobody-{uuid.uuid4().hex}@example.org", "wrong wrong")
    assert len(alerts.sent) == 1


async def test_behind_a_trusted_proxy__attacker_blocked_by_forwarded_address_not_the_proxy(app):
    service, _ = app
    async with client_from(service, "192.0.2.5") as home:
        owner = await register_patient(home)
    async with client_from(service, PROXY) as proxy:
        for i in range(60):
            response = await login(
                proxy, owner.email, f"guess {i}", **{"x-forwarded-for": "198.51.100.99"}
            )
            assert response.status_code in (401, 429)
        assert response.status_code == 429
        # Another client through the same proxy: Forwarded (RFC 7239) names it.
        response = await login(
            proxy, owner.email, owner.password, forwarded='for="192.0.2.5:5555";proto=https'
        )
        assert response.status_code == 200


async def test_forged_forwarding_headers_from_an_untrusted_peer__ignored(app):
    service, _ = app
    async with client_from(service, "192.0.2.6") as home:
        owner = await register_patient(home)
    async with client_from(service, "198.51.100.77") as attacker:
        for i in range(5):
            response = await login(
                attacker, owner.email, f"guess {i}", **{"x-forwarded-for": f"192.0.2.{100 + i}"}
            )
            assert response.status_code == 401
        # Each guess claimed another address; all were counted under the real one.
        response = await login(
            attacker, owner.email, "guess 6", **{"x-forwarded-for": "192.0.2.200"}
        )
        assert_problem(response, 429, "rate-limited")


async def test_registrations_past_the_hourly_limit_from_one_address__429(tight_app):
    service, _ = tight_app
    async with client_from(service, "198.51.100.80") as flood:
        for _ in range(3):
            await register_patient(flood)
        response = await flood.post(
            "/v1/auth/register",
            json={"email": f"x-{uuid.uuid4().hex}@example.org", "password": "violet kettle 12 x"},
        )
        assert_problem(response, 429, "rate-limited")
    async with client_from(service, "198.51.100.81") as elsewhere:
        await register_patient(elsewhere)


async def test_wrong_refresh_tokens_past_the_limit__429_and_good_ones_elsewhere_work(tight_app):
    service, _ = tight_app
    async with client_from(service, "192.0.2.7") as home:
        owner = await register_patient(home)
    async with client_from(service, "198.51.100.82") as guesser:
        for i in range(3):
            response = await guesser.post("/v1/auth/refresh", json={"refreshToken": f"guess-{i}"})
            assert response.status_code == 401
        response = await guesser.post(
            "/v1/auth/refresh", json={"refreshToken": owner.tokens["refreshToken"]}
        )
        assert_problem(response, 429, "rate-limited")
    async with client_from(service, "192.0.2.7") as home:
        response = await home.post(
            "/v1/auth/refresh", json={"refreshToken": owner.tokens["refreshToken"]}
        )
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "expected"),
    [
        ("198.51.100.1", [("x-forwarded-for", "1.2.3.4")], (), "198.51.100.1"),
        ("198.51.100.1", [("x-forwarded-for", "1.2.3.4")], ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", [("x-forwarded-for", "1.2.3.4")], ("10.0.0.0/8",), "1.2.3.4"),
        # The client wrote the left part itself: the hop next to our proxies counts.
        ("10.0.0.2", [("x-forwarded-for", "6.6.6.6, 1.2.3.4")], ("10.0.0.0/8",), "1.2.3.4"),
        ("10.0.0.2", [("x-forwarded-for", "1.2.3.4, 10.0.0.9")], ("10.0.0.0/8",), "1.2.3.4"),
        ("10.0.0.2", [("forwarded", 'for="[2001:db8::1]:4711"')], ("10.0.0.0/8",), "2001:db8::1"),
        (
            "10.0.0.2",
            [("forwarded", "for=1.2.3.4"), ("x-forwarded-for", "6.6.6.6")],
            ("10.0.0.0/8",),
            "1.2.3.4",
        ),
        ("10.0.0.2", [("x-forwarded-for", "garbage")], ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", [], ("10.0.0.0/8",), "10.0.0.2"),
    ],
)
def test_client_address__forwarding_headers_believed_from_trusted_proxies_only(
    peer, headers, trusted, expected
):
    assert client_address(peer, headers, trusted) == expected
