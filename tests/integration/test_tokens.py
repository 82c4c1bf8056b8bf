"""Access and refresh tokens through HTTP: every forgery and misuse is a 401
problem, refresh tokens rotate with reuse detection, keys rotate without logging
anyone out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.testing import AsyncTestClient

from tests.app_in_loop import client_from, in_loop_app  # noqa: F401 - the `app` fixture
from tests.conftest import Patient, audit_history, register_patient

PROBLEM = "application/problem+json"
ISSUER = "http://testserver.local"  # PHR_PUBLIC_URL of the test settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def current_key(conn) -> tuple[str, Ed25519PrivateKey]:
    """The current private key, as only a holder of the secrets key can read it."""
    from infra.secret_box import SecretBox

    row = await conn.fetchrow(
        "SELECT kid, private_key_sealed FROM signing_key WHERE retired_at IS NULL"
    )
    box = SecretBox(base64.b64decode(os.environ["PHR_SECRETS_KEY"]))
    raw = box.open(bytes(row["private_key_sealed"]), context=b"signing_key:" + row["kid"].encode())
    return row["kid"], Ed25519PrivateKey.from_private_bytes(raw)


def claims_for(patient_id: str, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "phr-api",
        "sub": patient_id,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def me_with(client, token: str):
    return await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


async def signed_in_again(client, patient: Patient) -> Patient:
    login = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert login.status_code == 200, login.text
    return Patient(patient.email, patient.password, login.json(), patient.profile)


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["status"] == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- access tokens ----------------------------------------------------------------


async def test_a_correctly_forged_token_is_accepted(client, patient, superuser_conn):
    """The control for the refusals below: our own crafting yields a valid token."""
    kid, key = await current_key(superuser_conn)
    token = jwt.encode(
        claims_for(patient.id), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}
    )
    response = await me_with(client, token)
    assert response.status_code == 200
    assert response.json()["id"] == patient.id


async def test_issued_token_has_the_profile_claims(client, patient, superuser_conn):
    token = patient.tokens["accessToken"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt" and header["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["aud"] == "phr-api"
    assert claims["sub"] == patient.id and claims["jti"]
    assert 0 < claims["exp"] - claims["iat"] <= 900 and claims["nbf"] <= claims["iat"]


async def test_alg_none_is_refused(client, patient, superuser_conn):
    kid, _ = await current_key(superuser_conn)
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    payload = b64(json.dumps(claims_for(patient.id)).encode())
    assert_unauthorized(await me_with(client, f"{header}.{payload}."))


async def test_hs256_signed_with_the_public_key_is_refused(client, patient, superuser_conn):
    kid, key = await current_key(superuser_conn)
    public = key.public_key()
    secrets_tried = [
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ]
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = b64(json.dumps(claims_for(patient.id)).encode())
    for secret in secrets_tried:
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        assert_unauthorized(await me_with(client, f"{header}.{payload}.{b64(signature)}"))


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {
            "exp": int(time.time()) - 3600,
            "iat": int(time.time()) - 4000,
            "nbf": int(time.time()) - 4000,
        },
        {"nbf": int(time.time()) + 3600},
        {"jti": None},
        {"exp": None},
        {"sub": "not-a-uuid"},
        {"sub": str(uuid.uuid4())},  # a patient that does not exist
    ],
    ids=[
        "wrong-aud",
        "wrong-iss",
        "expired",
        "future-nbf",
        "no-jti",
        "no-exp",
        "bad-sub",
        "unknown-patient",
    ],
)
async def test_bad_claims_are_refused(client, patient, superuser_conn, changes):
    kid, key = await current_key(superuser_conn)
    token = jwt.encode(
        claims_for(patient.id, **changes),
        key,
        algorithm="EdDSA",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    assert_unauthorized(await me_with(client, token))


async def test_unknown_kid_and_foreign_key_are_refused(client, patient, superuser_conn):
    kid, _ = await current_key(superuser_conn)
    stranger = Ed25519PrivateKey.generate()
    claims = claims_for(patient.id)
    for headers in ({"kid": "no-such-key", "typ": "at+jwt"}, {"kid": kid, "typ": "at+jwt"}):
        token = jwt.encode(claims, stranger, algorithm="EdDSA", headers=headers)
        assert_unauthorized(await me_with(client, token))


@pytest.mark.parametrize("typ", [None, "JWT", "dpop+jwt"])
async def test_missing_or_wrong_typ_is_refused(client, patient, superuser_conn, typ):
    kid, key = await current_key(superuser_conn)
    token = jwt.encode(claims_for(patient.id), key, algorithm="EdDSA", headers={"kid": kid})
    header, payload, _ = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(header + "=="))
    fields.pop("typ", None)
    if typ:
        fields["typ"] = typ
    header = b64(json.dumps(fields).encode())
    signature = key.sign(f"{header}.{payload}".encode())
    assert_unauthorized(await me_with(client, f"{header}.{payload}.{b64(signature)}"))


async def test_tampered_payload_is_refused(client, patient, other_patient):
    header, payload, signature = patient.tokens["accessToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = other_patient.id
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    assert_unauthorized(await me_with(client, forged))


async def test_refresh_token_is_not_an_access_token(client, patient):
    assert_unauthorized(await me_with(client, patient.tokens["refreshToken"]))
    assert_unauthorized(await client.get("/v1/me", headers={"Authorization": "Basic Zm9vOmJhcg=="}))
    assert_unauthorized(await client.get("/v1/me", headers={"Authorization": "Bearer "}))
    assert_unauthorized(await client.get("/v1/me"))


# --- refresh tokens ---------------------------------------------------------------


async def refresh(client, token: str):
    return await client.post("/v1/auth/refresh", json={"refreshToken": token})


async def test_refresh_rotates_and_the_new_pair_works(client, patient, superuser_conn):
    response = await refresh(client, patient.tokens["refreshToken"])
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["tokenType"] == "Bearer" and pair["refreshToken"] != patient.tokens["refreshToken"]
    assert (await me_with(client, pair["accessToken"])).status_code == 200
    assert (await refresh(client, pair["refreshToken"])).status_code == 200
    # Only hashes are stored.
    stored = await superuser_conn.fetch(
        "SELECT token_hash FROM refresh_token WHERE patient_id = $1", uuid.UUID(patient.id)
    )
    assert len(stored) == 3
    assert all(len(row["token_hash"]) == 32 for row in stored)
    assert hashlib.sha256(pair["refreshToken"].encode()).digest() in {
        bytes(r["token_hash"]) for r in stored
    }


async def test_reuse_revokes_the_whole_family(client, patient):
    first = patient.tokens["refreshToken"]
    second = (await refresh(client, first)).json()["refreshToken"]
    # The spent token comes back (a thief, or a confused client) ...
    assert_unauthorized(await refresh(client, first))
    # ... and the newer token of the same family is dead too.
    assert_unauthorized(await refresh(client, second))
    assert_unauthorized(await me_with(client, patient.tokens["accessToken"]))
    history = await audit_history(client, await signed_in_again(client, patient))
    reuse = [r for r in history if r["action"] == "auth.refresh_reuse"]
    assert [(r["outcome"], r["reason"]) for r in reuse] == [("denied", "token-reused")]
    # Other sign-ins of the same patient are separate families and still work.
    login = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert (await refresh(client, login.json()["refreshToken"])).status_code == 200


async def test_parallel_refresh_with_one_token_succeeds_once(app, superuser_conn):
    # The in-loop app: the two requests really overlap (the test client serialises).
    async with client_from(app) as client:
        patient = await register_patient(client)
        token = patient.tokens["refreshToken"]
        for _ in range(3):
            responses = await asyncio.gather(refresh(client, token), refresh(client, token))
            assert sorted(r.status_code for r in responses) == [200, 401]
            loser = next(r for r in responses if r.status_code == 401)
            assert loser.headers["content-type"].startswith(PROBLEM)
            # The loser presented a spent token: reuse, so the family is revoked and
            # no live token is left behind (RFC 9700: at most one, here none).
            live = await superuser_conn.fetchval(
                "SELECT count(*) FROM refresh_token t "
                "JOIN refresh_token_family f ON f.id = t.family_id "
                "WHERE t.patient_id = $1 AND t.spent_at IS NULL AND f.revoked_at IS NULL",
                uuid.UUID(patient.id),
            )
            assert live == 0
            login = await client.post(
                "/v1/auth/login", json={"email": patient.email, "password": patient.password}
            )
            token = login.json()["refreshToken"]


async def test_logout_revokes_the_family(client, patient):
    token = patient.tokens["refreshToken"]
    response = await client.post("/v1/auth/logout", json={"refreshToken": token})
    assert response.status_code == 204
    assert_unauthorized(await refresh(client, token))
    # The session's access token ends with it (the token check asks for the session).
    assert_unauthorized(await me_with(client, patient.tokens["accessToken"]))
    actions = await audit_history(client, await signed_in_again(client, patient))
    assert ("auth.logout", "success") in [(r["action"], r["outcome"]) for r in actions]
    assert ("auth.refresh", "denied") in [(r["action"], r["outcome"]) for r in actions]


async def test_logout_after_refresh_revokes_the_newest_token(client, patient):
    newer = (await refresh(client, patient.tokens["refreshToken"])).json()["refreshToken"]
    assert (await client.post("/v1/auth/logout", json={"refreshToken": newer})).status_code == 204
    assert_unauthorized(await refresh(client, newer))


async def test_unknown_refresh_token_and_expired_one_are_401(client, patient, superuser_conn):
    assert_unauthorized(await refresh(client, "A" * 43))
    assert_unauthorized(await client.post("/v1/auth/logout", json={"refreshToken": "B" * 43}))
    await superuser_conn.execute(
        "UPDATE refresh_token SET expires_at = now() - interval '1 second' WHERE patient_id = $1",
        uuid.UUID(patient.id),
    )
    assert_unauthorized(await refresh(client, patient.tokens["refreshToken"]))


async def test_refresh_writes_audit_rows(client, patient):
    await refresh(client, patient.tokens["refreshToken"])
    rows = await audit_history(client, patient)
    assert [(r["action"], r["outcome"]) for r in rows][-1] == ("auth.refresh", "success")


# --- keys -------------------------------------------------------------------------


async def jwks_kids(client) -> list[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    for key in keys:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
        assert key["use"] == "sig" and key["alg"] == "EdDSA"
        assert len(base64.urlsafe_b64decode(key["x"] + "==")) == 32
        assert "d" not in key
    return [key["kid"] for key in keys]


async def test_jwks_lists_the_signing_key(client, patient):
    kid = jwt.get_unverified_header(patient.tokens["accessToken"])["kid"]
    assert kid in await jwks_kids(client)


async def test_jwks_key_verifies_issued_tokens(client, patient):
    response = await client.get("/.well-known/jwks.json")
    kid = jwt.get_unverified_header(patient.tokens["accessToken"])["kid"]
    jwk = next(k for k in response.json()["keys"] if k["kid"] == kid)
    public = jwt.PyJWK(jwk)
    claims = jwt.decode(
        patient.tokens["accessToken"],
        public.key,
        algorithms=["EdDSA"],
        audience="phr-api",
        issuer=ISSUER,
    )
    assert claims["sub"] == patient.id


async def test_rotation_keeps_old_tokens_valid(
    client, patient, settings, database_dsn, monkeypatch
):
    from api.cli.keys import rotate_signing_key

    # Processes re-read the current key every few seconds; here, at once.
    monkeypatch.setattr("infra.pg.signing_keys.CURRENT_KEY_CACHE_SECONDS", 0.0)

    old_kid = jwt.get_unverified_header(patient.tokens["accessToken"])["kid"]
    result = await rotate_signing_key(database_dsn, settings)
    assert result["kid"] != old_kid
    kids = await jwks_kids(client)
    assert old_kid in kids and result["kid"] in kids
    assert kids[0] == result["kid"]  # newest first
    assert (await me_with(client, patient.tokens["accessToken"])).status_code == 200
    login = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert jwt.get_unverified_header(login.json()["accessToken"])["kid"] == result["kid"]


async def test_rotation_is_audited_as_the_operators_act(settings, database_dsn, superuser_conn):
    from api.cli.keys import rotate_signing_key

    result = await rotate_signing_key(database_dsn, settings)
    # An operator's act on no patient's data: it is in the service's own chain,
    # which no patient's GET /v1/audit shows.
    row = await superuser_conn.fetchrow(
        "SELECT actor_type, actor_id, patient_id, resource_type, resource_ids, outcome "
        "FROM audit_event WHERE action = 'signing-key.rotated' AND $1 = ANY(resource_ids)",
        result["kid"],
    )
    assert row is not None
    assert (row["actor_type"], row["actor_id"], row["patient_id"], row["outcome"]) == (
        "system",
        "operator-cli",
        None,
        "success",
    )
    assert list(row["resource_ids"]) == [result["kid"], result["retiredKid"]]


async def test_long_retired_key_no_longer_verifies(
    client, patient, settings, superuser_conn, database_dsn
):
    from api.cli.keys import rotate_signing_key

    kid, key = await current_key(superuser_conn)
    await rotate_signing_key(database_dsn, settings)
    await superuser_conn.execute(
        "UPDATE signing_key SET retired_at = now() - interval '2 hours' WHERE kid = $1", kid
    )
    token = jwt.encode(
        claims_for(patient.id), key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}
    )
    # A process re-reads a key's retirement at most every few seconds (the running
    # client's app has just used this key); a process that has not seen it lately
    # refuses at once.
    from api.app import create_app

    async with AsyncTestClient(
        app=create_app(settings), base_url="http://testserver.local"
    ) as fresh:
        assert_unauthorized(await me_with(fresh, token))
        assert kid not in await jwks_kids(fresh)


def test_phr_keys_rotate_cli(database_dsn, tmp_path):
    env = dict(os.environ, DATABASE_URL=database_dsn, PHR_DATA_DIR=str(tmp_path))
    completed = subprocess.run(
        [sys.executable, "-m", "api.cli", "keys", "rotate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["kid"] and result["kid"] != result["retiredKid"]


async def test_concurrent_first_key_creation_leaves_one_current(
    superuser_conn, database_dsn, settings
):
    from datetime import UTC, datetime

    from infra.access_tokens import verify_retired_for
    from infra.pg.database import Database
    from infra.pg.signing_keys import PgSigningKeys
    from infra.secret_box import load_secret_box

    # Start from "no current key", then let several processes' worth of pools race.
    await superuser_conn.execute(
        "UPDATE signing_key SET retired_at = now() WHERE retired_at IS NULL"
    )
    databases = [Database(database_dsn, min_size=1, max_size=1) for _ in range(4)]
    for database in databases:
        await database.open()
    try:
        now = datetime.now(UTC)
        keys = await asyncio.gather(
            *(
                PgSigningKeys(
                    database,
                    load_secret_box(Path("/nonexistent"), os.environ["PHR_SECRETS_KEY"]),
                    verify_retired_for=verify_retired_for(900),
                ).current(now)
                for database in databases
            )
        )
    finally:
        for database in databases:
            await database.close()
    assert len({key.kid for key in keys}) == 1
    assert (
        await superuser_conn.fetchval("SELECT count(*) FROM signing_key WHERE retired_at IS NULL")
        == 1
    )


async def test_register_patient_helper_still_works_after_rotation(client):
    patient = await register_patient(client)
    assert (await me_with(client, patient.tokens["accessToken"])).status_code == 200
