"""Verified access tokens are remembered (keyed by the whole token) so the same
token's signature is not checked on every request, and the memory changes no
answer: an expired token, a retired signing key and a forged token are refused
as before."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
from litestar.testing import AsyncTestClient

from api.app import create_app
from domain.clock import FixedClock
from tests.conftest import register_patient
from tests.integration.test_tokens import assert_unauthorized, claims_for, current_key, me_with


async def test_a_remembered_token_is_still_refused_once_it_expires(settings):
    clock = FixedClock(datetime.now(UTC))
    async with AsyncTestClient(
        app=create_app(settings, clock=clock), base_url="http://testserver.local"
    ) as client:
        patient = await register_patient(client)
        token = patient.tokens["accessToken"]
        for _ in range(3):
            assert (await me_with(client, token)).status_code == 200
        records = await client.get("/v1/records", headers=patient.headers)
        assert records.status_code == 200
        clock.advance(minutes=16)
        assert_unauthorized(await me_with(client, token))
        assert_unauthorized(await client.get("/v1/records", headers=patient.headers))


async def test_a_remembered_token_is_refused_once_its_key_is_retired_for_good(
    client, superuser_conn, monkeypatch
):
    # Key retirement is re-read every few seconds; here, at every request.
    monkeypatch.setattr("infra.pg.signing_keys.CURRENT_KEY_CACHE_SECONDS", 0.0)
    patient = await register_patient(client)
    kid, key = await current_key(superuser_conn)
    token = jwt.encode(
        claims_for(patient.id), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert (await me_with(client, token)).status_code == 200
    assert (await me_with(client, token)).status_code == 200  # from memory
    await superuser_conn.execute(
        "UPDATE signing_key SET retired_at = now() - interval '2 hours' WHERE kid = $1", kid
    )
    assert_unauthorized(await me_with(client, token))
    assert_unauthorized(
        await client.get("/v1/records", headers={"Authorization": f"Bearer {token}"})
    )
    # A new key for the tests that follow.
    await superuser_conn.execute("UPDATE signing_key SET retired_at = now() WHERE kid = $1", kid)


async def test_a_token_differing_from_a_remembered_one_is_checked_afresh(client):
    patient = await register_patient(client)
    token = patient.tokens["accessToken"]
    assert (await me_with(client, token)).status_code == 200
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert_unauthorized(await me_with(client, f"{header}.{payload}.{flipped}"))


async def test_an_erased_account_is_refused_on_the_audited_read_paths(client):
    patient = await register_patient(client)
    created = await client.post(
        "/v1/records",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "weight"},
            "valueQuantity": {"value": 70, "unit": "kg"},
        },
        headers=patient.headers,
    )
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    assert (
        await client.get(f"/v1/records/{record_id}", headers=patient.headers)
    ).status_code == 200
    erased = await client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert erased.status_code == 204, erased.text
    # The token is remembered and still unexpired: the read's own statement refuses it.
    assert_unauthorized(await client.get(f"/v1/records/{record_id}", headers=patient.headers))
    assert_unauthorized(await client.get("/v1/records", headers=patient.headers))
