"""Accounts, sign-in, throttling and their audit rows, through HTTP."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import argon2
import httpx
import msgspec
import pytest

from tests.app_in_loop import client_from as from_address
from tests.app_in_loop import in_loop_app, running  # noqa: F401 - the `app` fixture
from tests.conftest import audit_history, register_patient
from tests.mail_support import mailbox_of

PROBLEM = "application/problem+json"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.org"


def strong_password() -> str:
    return f"violet kettle {uuid.uuid4().hex[:8]} meadow"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"] and body["title"]
    return body


@pytest.fixture
async def tight_app(settings) -> AsyncIterator[Any]:
    """The app with small throttling limits."""
    from api.app import create_app

    tight = msgspec.structs.replace(settings, login_account_failures=3, login_address_failures=4)
    async with running(create_app(tight)) as started:
        yield started


@pytest.fixture
async def one_worker_app(settings) -> AsyncIterator[Any]:
    """The app with one hashing thread and room for one more hash in the queue."""
    from api.app import create_app

    small = msgspec.structs.replace(settings, password_hash_workers=1, password_hash_queue=1)
    async with running(create_app(small)) as started:
        yield started


# --- registration ---------------------------------------------------------------


async def test_register_answers_202_and_me_shows_the_profile(client):
    email = new_email()
    password = strong_password()
    response = await client.post(
        "/v1/auth/register",
        json={"email": f"  {email.upper()}  ", "password": password, "displayName": "Ada"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    local, _, domain = email.upper().partition("@")
    typed = f"{local}@{domain.lower()}"
    # Trimmed, domain lower-cased, local part as typed.
    code = await mailbox_of(client).next_code(typed)
    response = await client.post("/v1/auth/verify-email", json={"email": email, "code": code})
    assert response.status_code == 204, response.text
    login = await client.post("/v1/auth/login", json={"email": email, "password": password})
    headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    profile = (await client.get("/v1/me", headers=headers)).json()
    assert profile["email"] == typed
    assert profile["displayName"] == "Ada"
    assert profile["emailVerified"] is True
    assert uuid.UUID(profile["id"]) and profile["createdAt"]
    assert set(profile) == {
        "id",
        "email",
        "emailVerified",
        "displayName",
        "locale",
        "timeZone",
        "createdAt",
        "unreadNotifications",
    }


async def test_patient_fixture_reaches_me(patient, client):
    response = await client.get("/v1/me", headers=patient.headers)
    assert response.status_code == 200
    assert response.json()["id"] == patient.id
    assert response.json()["email"] == patient.email


async def test_duplicate_email_differing_in_case_answers_like_a_new_one(client):
    email = new_email()
    await register_patient(client, email=email)
    response = await client.post(
        "/v1/auth/register", json={"email": email.upper(), "password": strong_password()}
    )
    assert response.status_code == 202
    fresh = await client.post(
        "/v1/auth/register", json={"email": new_email(), "password": strong_password()}
    )
    assert (response.status_code, response.content) == (fresh.status_code, fresh.content)


@pytest.mark.parametrize("password", ["password123", "iloveyou", "Qwertyuiop", "baseball1"])
async def test_common_password_is_refused_naming_the_field(client, password):
    response = await client.post(
        "/v1/auth/register", json={"email": new_email(), "password": password}
    )
    body = assert_problem(response, 422)
    assert body["type"].endswith("/weak-password")
    assert body["errors"][0]["field"] == "password"
    assert "common" in body["errors"][0]["message"]


async def test_short_password_is_refused(client):
    response = await client.post(
        "/v1/auth/register", json={"email": new_email(), "password": "x7#kQ2p"}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "password", "message": "must be at least 8 characters long"}
    ]


async def test_password_equal_to_email_is_refused(client):
    email = new_email()
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": email.upper()}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "password"
    assert "email" in body["errors"][0]["message"]


async def test_long_password_is_accepted_and_works(client):
    password = ("long passphrase " + uuid.uuid4().hex) * 8
    assert len(password) > 129
    patient = await register_patient(client, password=password[:1024])
    assert patient.profile["id"]


async def test_invalid_email_and_unknown_field_are_problems(client):
    response = await client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": strong_password()}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "email"
    response = await client.post(
        "/v1/auth/register",
        json={"email": new_email(), "password": strong_password(), "admin": True},
    )
    assert_problem(response, 400)


async def test_register_writes_account_created_audit_without_email(client):
    patient = await register_patient(client)
    rows = await audit_history(client, patient)
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("account.created", "success"),
        ("account.verified", "success"),
        ("auth.login", "success"),
    ]
    for row in rows:
        assert patient.email.lower() not in repr(row).lower()
        assert patient.password not in repr(row)


async def test_passwords_are_argon2id_at_least_owasp(client, superuser_conn):
    patient = await register_patient(client)
    stored = await superuser_conn.fetchval(
        "SELECT password_hash FROM patient WHERE id = $1", uuid.UUID(patient.id)
    )
    params = argon2.extract_parameters(stored)
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19456 and params.time_cost >= 2 and params.parallelism >= 1
    assert patient.password not in stored


# --- login ----------------------------------------------------------------------


async def test_login_returns_bearer_pair(client):
    email, password = new_email(), strong_password()
    await register_patient(client, email=email, password=password)
    response = await client.post(
        "/v1/auth/login", json={"email": email.upper(), "password": password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "Bearer"
    assert 0 < body["expiresIn"] <= 900
    assert body["accessToken"].count(".") == 2 and body["refreshToken"]
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_email_and_wrong_password_are_indistinguishable(app, superuser_conn):
    async with from_address(app, "127.0.0.2") as client:
        patient = await register_patient(client)
    async with from_address(app, "198.51.100.10") as other:
        wrong_times, unknown_times = [], []
        wrong = unknown = None
        for _ in range(2):
            started = time.perf_counter()
            wrong = await other.post(
                "/v1/auth/login", json={"email": patient.email, "password": "not the password"}
            )
            wrong_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            unknown = await other.post(
                "/v1/auth/login", json={"email": new_email(), "password": "not the password"}
            )
            unknown_times.append(time.perf_counter() - started)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")
    # Both paths run one argon2 verification: an unknown email is not answered fast.
    assert statistics.median(unknown_times) > 0.4 * statistics.median(wrong_times)

    failures = await superuser_conn.fetch(
        "SELECT patient_id, reason FROM audit_event WHERE action = 'auth.login' "
        "AND outcome = 'failure' AND client_address = '198.51.100.10'"
    )
    assert {str(r["patient_id"]) if r["patient_id"] else None for r in failures} == {
        patient.id,
        None,
    }


async def test_login_rehashes_when_parameters_are_weaker(client, superuser_conn):
    patient = await register_patient(client)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(
        patient.password
    )
    await superuser_conn.execute(
        "UPDATE patient SET password_hash = $2 WHERE id = $1", uuid.UUID(patient.id), weak
    )
    response = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert response.status_code == 200
    stored = await superuser_conn.fetchval(
        "SELECT password_hash FROM patient WHERE id = $1", uuid.UUID(patient.id)
    )
    assert stored != weak
    params = argon2.extract_parameters(stored)
    assert (params.memory_cost, params.time_cost) >= (19456, 2)


# --- throttling -----------------------------------------------------------------


async def test_account_is_throttled_after_failures_and_others_still_log_in(app):
    async with from_address(app) as client:
        victim = await register_patient(client)
        bystander = await register_patient(client)
    async with from_address(app, "198.51.100.20") as attacker:
        for _ in range(5):  # the default limit: 5 failures per account per 15 minutes
            response = await attacker.post(
                "/v1/auth/login", json={"email": victim.email, "password": "wrong guess!"}
            )
            assert response.status_code == 401
        response = await attacker.post(
            "/v1/auth/login", json={"email": victim.email, "password": "wrong guess!"}
        )
        body = assert_problem(response, 429)
        assert body["type"].endswith("/rate-limited")
        assert 1 <= int(response.headers["retry-after"]) <= 900
        assert response.headers["ratelimit-policy"] == '"default";q=5;w=900'
        assert response.headers["ratelimit"].startswith('"default";r=0;t=')
        # Even the right password waits: the guesser must not learn it was right.
        response = await attacker.post(
            "/v1/auth/login", json={"email": victim.email, "password": victim.password}
        )
        assert response.status_code == 429
        # Another account, even from the same address, is not affected.
        response = await attacker.post(
            "/v1/auth/login", json={"email": bystander.email, "password": bystander.password}
        )
        assert response.status_code == 200


async def test_successful_login_resets_the_account_count(tight_app):
    async with from_address(tight_app) as client:
        patient = await register_patient(client)
    async with from_address(tight_app, "198.51.100.30") as caller:
        for _ in range(2):
            assert (
                await caller.post(
                    "/v1/auth/login", json={"email": patient.email, "password": "nope nope"}
                )
            ).status_code == 401
        assert (
            await caller.post(
                "/v1/auth/login", json={"email": patient.email, "password": patient.password}
            )
        ).status_code == 200
        # Limit is 3: two more failures are allowed again after the reset.
        for _ in range(2):
            assert (
                await caller.post(
                    "/v1/auth/login", json={"email": patient.email, "password": "nope nope"}
                )
            ).status_code == 401


async def test_address_is_throttled_across_accounts(tight_app):
    async with from_address(tight_app) as client:
        patient = await register_patient(client)
    async with from_address(tight_app, "198.51.100.40") as sprayer:
        for _ in range(4):  # address limit 4, each on a different (unknown) account
            response = await sprayer.post(
                "/v1/auth/login", json={"email": new_email(), "password": "Summer2024!"}
            )
            assert response.status_code == 401
        response = await sprayer.post(
            "/v1/auth/login", json={"email": patient.email, "password": patient.password}
        )
        assert_problem(response, 429)
        assert response.headers["ratelimit-policy"] == '"default";q=4;w=900'
    async with from_address(tight_app, "198.51.100.41") as elsewhere:
        response = await elsewhere.post(
            "/v1/auth/login", json={"email": patient.email, "password": patient.password}
        )
        assert response.status_code == 200


async def test_throttle_counts_parallel_guesses(app):
    """Guesses sent at once cannot all slip under the account limit."""
    async with from_address(app) as client:
        victim = await register_patient(client)
    async with from_address(app, "198.51.100.50") as attacker:
        responses = await asyncio.gather(
            *(
                attacker.post(
                    "/v1/auth/login", json={"email": victim.email, "password": f"guess {i} x"}
                )
                for i in range(12)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(401) <= 5
    assert set(statuses) <= {401, 429, 503}
    assert statuses.count(429) >= 7 - statuses.count(503)


async def test_full_hashing_queue_answers_503_with_retry_after(one_worker_app):
    # One worker and one queued slot: a burst of sign-ins overflows at once.
    async with from_address(one_worker_app, "198.51.100.60") as burst:
        responses = await asyncio.gather(
            *(
                burst.post(
                    "/v1/auth/login", json={"email": new_email(), "password": "whatever it is"}
                )
                for _ in range(8)
            )
        )
    overloaded = [r for r in responses if r.status_code == 503]
    assert overloaded, [r.status_code for r in responses]
    for response in overloaded:
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1
    assert {r.status_code for r in responses} <= {401, 503}
    # Refusing for load is not a failed guess: the address has no failures from it.
    async with from_address(one_worker_app, "198.51.100.60") as again:
        patient = await register_patient(again)
        response = await again.post(
            "/v1/auth/login", json={"email": patient.email, "password": patient.password}
        )
        assert response.status_code == 200


async def test_login_errors_are_problem_json(client):
    assert_problem(await client.post("/v1/auth/login", json={"email": "a@b.org"}), 400)
    assert_problem(
        await client.post(
            "/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    assert_problem(await client.get("/v1/me"), 401)
