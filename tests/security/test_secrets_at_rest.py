"""Item: secrets at rest.

Before: token-signing private keys sat in `signing_key` as plain PEM (whoever read
the table could mint tokens for anyone); a leaked key could only be rotated, its
tokens living on; a refresh-token family lived forever if rotated often enough; and
the secrets key file loaded whatever its permissions. Now signing keys are sealed
with the secrets key, `phr keys revoke KID` ends a key's tokens at once, families
end 30 days (a setting) after the sign-in, and a readable key file stops the start."""

from __future__ import annotations

import base64
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.testing import AsyncTestClient

from api.cli.keys import revoke_signing_key
from domain.clock import FixedClock
from infra.secret_box import SecretBox, SecretKeyError, load_secret_box
from tests.conftest import register_patient
from tests.security.support import assert_problem


def _could_be_private_key(value: bytes, public_raw: bytes) -> bool:
    """Whether `value`, read any plain way, is the private half of `public_raw`."""
    candidates = [value, *(value[i : i + 32] for i in range(0, max(1, len(value) - 31)))]
    for candidate in candidates:
        if len(candidate) == 32:
            public = Ed25519PrivateKey.from_private_bytes(candidate).public_key()
            if (
                public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                == public_raw
            ):
                return True
    for loader in (serialization.load_pem_private_key, serialization.load_der_private_key):
        try:
            loader(value, None)
            return True
        except (ValueError, TypeError):
            pass
    return False


async def test_a_copy_of_the_signing_key_table__holds_no_usable_private_key(
    client, patient, superuser_conn
):
    rows = await superuser_conn.fetch("SELECT * FROM signing_key")
    assert rows
    for row in rows:
        public_raw = bytes(row["public_key"])
        for name, value in row.items():
            if name == "public_key" or value is None:
                continue
            raw = value if isinstance(value, bytes) else str(value).encode()
            assert b"PRIVATE KEY" not in raw, name
            assert not _could_be_private_key(raw, public_raw), name
    # It opens with the secrets key, and only bound to its own kid.
    current = next(r for r in rows if r["retired_at"] is None)
    box = SecretBox(base64.b64decode(os.environ["PHR_SECRETS_KEY"]))
    sealed = bytes(current["private_key_sealed"])
    raw = box.open(sealed, context=b"signing_key:" + current["kid"].encode())
    assert _could_be_private_key(raw, bytes(current["public_key"]))
    with pytest.raises(SecretKeyError):
        box.open(sealed, context=b"signing_key:another-kid")


async def test_keys_revoke_kid__its_tokens_refused_at_once(client, database_dsn, settings):
    patient = await register_patient(client)
    kid = jwt.get_unverified_header(patient.tokens["accessToken"])["kid"]
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200

    result = await revoke_signing_key(database_dsn, settings, kid)
    assert result == {"kid": kid, "revoked": True}

    # The very next request: no cache may keep the key alive.
    assert_problem(await client.get("/v1/me", headers=patient.headers), 401)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert kid not in {key["kid"] for key in jwks["keys"]}
    # Signing in again works, with a new key.
    response = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert response.status_code == 200
    token = response.json()["accessToken"]
    assert jwt.get_unverified_header(token)["kid"] != kid
    assert (
        await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200
    assert (await revoke_signing_key(database_dsn, settings, kid))["revoked"] is False


async def test_refresh_family_rotated_every_10_days__ends_30_days_after_sign_in(settings):
    from api.app import create_app

    clock = FixedClock(datetime.now(UTC))
    app = create_app(
        msgspec.structs.replace(settings, refresh_token_ttl_seconds=14 * 24 * 3600), clock=clock
    )
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        patient = await register_patient(client)
        token = patient.tokens["refreshToken"]
        for _ in range(2):
            clock.advance(days=10)
            response = await client.post("/v1/auth/refresh", json={"refreshToken": token})
            assert response.status_code == 200, response.text
            token = response.json()["refreshToken"]
        # Day 30 and a bit: the token itself is 10 days old, the family 30 days.
        clock.advance(days=10, seconds=1)
        response = await client.post("/v1/auth/refresh", json={"refreshToken": token})
        assert_problem(response, 401)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_secrets_key_file_readable_by_group_or_others__refuses_to_load(tmp_path: Path, mode):
    load_secret_box(tmp_path, None)  # made 0600 on first use
    key_file = tmp_path / "keys" / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(mode)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        load_secret_box(tmp_path, None)
    key_file.chmod(0o600)
    load_secret_box(tmp_path, None)
