"""Ed25519 keys that sign access tokens, kept in PostgreSQL so every API process
signs and verifies with the same set.

Exactly one key is current. The first process that needs one creates it under an
advisory lock (and a unique partial index backs that up), so two processes starting
together cannot both create a "current" key. Rotation retires the current key and
creates the next; a retired key keeps verifying for as long as a token it signed
can live. The private key is stored as unencrypted PKCS#8 PEM: database access is
enough to mint tokens (an accepted trade-off for now; a KMS would fix it)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime, timedelta

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.pg.database import Database

_CREATE_LOCK_KEY = 0x7068_725F_6B65  # "phr_ke"
# How long a process keeps signing with the key it last saw as current. After a
# rotation elsewhere it may sign with the retired key this long; verification
# accepts retired keys for the token lifetime plus a margin larger than this.
CURRENT_KEY_CACHE_SECONDS = 5.0


class CurrentSigningKey(msgspec.Struct, frozen=True):
    kid: str
    private_key: Ed25519PrivateKey


class PublishedKey(msgspec.Struct, frozen=True):
    kid: str
    public_key: bytes  # raw 32 bytes
    created_at: datetime
    retired_at: datetime | None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint_kid(public_raw: bytes) -> str:
    """RFC 7638 JWK thumbprint: the kid names the key itself."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_raw)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


class PgSigningKeys:
    def __init__(self, database: Database, *, verify_retired_for: timedelta):
        self._database = database
        self._verify_retired_for = verify_retired_for
        # Keys never change once written; only their retirement does. A key's
        # retirement time is cached as briefly as the current key is: a retired
        # key keeps verifying for a token's lifetime anyway, so seconds of
        # staleness change nothing, and each request saves a round trip.
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        self._current: tuple[float, CurrentSigningKey] | None = None
        self._retirement: dict[str, tuple[float, datetime | None]] = {}

    _CURRENT = "SELECT kid, private_key_pem FROM signing_key WHERE retired_at IS NULL"
    _INSERT = """
        INSERT INTO signing_key (kid, algorithm, private_key_pem, public_key, created_at)
        VALUES ($1, 'EdDSA', $2, $3, $4)
    """
    _RETIRE = "UPDATE signing_key SET retired_at = $1 WHERE retired_at IS NULL RETURNING kid"

    async def current(self, now: datetime) -> CurrentSigningKey:
        cached = self._current
        if cached is not None and time.monotonic() - cached[0] < CURRENT_KEY_CACHE_SECONDS:
            return cached[1]
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._CURRENT)
            if row is None:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK_KEY)
                row = await conn.fetchrow(self._CURRENT)
                if row is None:
                    await self._insert_new(conn, now)
                    row = await conn.fetchrow(self._CURRENT)
        kid = row["kid"]
        key = self._private.get(kid)
        if key is None:
            loaded = serialization.load_pem_private_key(row["private_key_pem"].encode(), None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise RuntimeError(f"signing key {kid} is not an Ed25519 key")
            key = self._private[kid] = loaded
        current = CurrentSigningKey(kid, key)
        self._current = (time.monotonic(), current)
        return current

    async def rotate(self, now: datetime) -> tuple[str, str | None]:
        """Makes a new current key; returns (new kid, retired kid or None)."""
        async with self._database.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK_KEY)
            retired = await conn.fetchval(self._RETIRE, now)
            kid = await self._insert_new(conn, now)
        self._current = None
        return kid, retired

    async def _insert_new(self, conn, now: datetime) -> str:
        private = Ed25519PrivateKey.generate()
        public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        kid = thumbprint_kid(public_raw)
        await conn.execute(self._INSERT, kid, pem, public_raw, now)
        return kid

    _BY_KID = "SELECT public_key, retired_at FROM signing_key WHERE kid = $1"

    async def verification_key(self, kid: str, now: datetime) -> Ed25519PublicKey | None:
        """The key for `kid` if it may still verify tokens: current, or retired
        recently enough that tokens it signed can still be alive."""
        cached = self._retirement.get(kid)
        if cached is None or time.monotonic() - cached[0] >= CURRENT_KEY_CACHE_SECONDS:
            async with self._database.connection() as conn:
                row = await conn.fetchrow(self._BY_KID, kid)
            if row is None:
                return None
            if kid not in self._public:
                self._public[kid] = Ed25519PublicKey.from_public_bytes(bytes(row["public_key"]))
            cached = self._retirement[kid] = (time.monotonic(), row["retired_at"])
        retired_at = cached[1]
        if retired_at is not None and retired_at + self._verify_retired_for <= now:
            return None
        return self._public[kid]

    _PUBLISHED = """
        SELECT kid, public_key, created_at, retired_at FROM signing_key
        WHERE retired_at IS NULL OR retired_at > $1
        ORDER BY created_at DESC
    """

    async def published(self, now: datetime) -> list[PublishedKey]:
        """The current key and every retired key whose tokens may still be alive."""
        await self.current(now)  # the first caller may be a JWKS fetch
        async with self._database.connection() as conn:
            rows = await conn.fetch(self._PUBLISHED, now - self._verify_retired_for)
        return [
            PublishedKey(row["kid"], bytes(row["public_key"]), row["created_at"], row["retired_at"])
            for row in rows
        ]
