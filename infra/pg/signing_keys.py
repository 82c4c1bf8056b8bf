"""Ed25519 keys that sign access tokens, kept in PostgreSQL so every API process
signs and verifies with the same set.

Exactly one key is current. The first process that needs one creates it under an
advisory lock (and a unique partial index backs that up), so two processes starting
together cannot both create a "current" key. Rotation retires the current key and
creates the next; a retired key keeps verifying for as long as a token it signed
can live; a revoked key verifies nothing from then on. The private key is stored
sealed with the secrets key (`infra.secret_box`, kept outside the database), bound
to its kid: a copy of the table alone mints no token."""

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
from infra.secret_box import SecretBox

_CREATE_LOCK_KEY = 0x7068_725F_6B65  # "phr_ke"
# How long a process trusts a key's retirement time it read. Verification accepts
# retired keys for the token lifetime plus a margin larger than this. (Revocation
# does not wait for it: the per-request account check reads revoked_at.)
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
    def __init__(self, database: Database, secret_box: SecretBox, *, verify_retired_for: timedelta):
        self._database = database
        self._secret_box = secret_box
        self._verify_retired_for = verify_retired_for
        # Keys never change once written; only their retirement does. A key's
        # retirement time is cached as briefly as the current key is: a retired
        # key keeps verifying for a token's lifetime anyway, so seconds of
        # staleness change nothing, and each request saves a round trip.
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        self._current: tuple[float, CurrentSigningKey] | None = None
        self._retirement: dict[str, tuple[float, datetime | None]] = {}

    _CURRENT = "SELECT kid, private_key_sealed FROM signing_key WHERE retired_at IS NULL"
    _INSERT = """
        INSERT INTO signing_key (kid, algorithm, private_key_sealed, public_key, created_at)
        VALUES ($1, 'EdDSA', $2, $3, $4)
    """
    _RETIRE = "UPDATE signing_key SET retired_at = $1 WHERE retired_at IS NULL RETURNING kid"

    async def current(self, now: datetime) -> CurrentSigningKey:
        # Asked every time (one indexed row, on sign-in and refresh only): a key
        # revoked in another process must not sign one more token.
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
            raw = self._secret_box.open(bytes(row["private_key_sealed"]), context=_context(kid))
            key = self._private[kid] = Ed25519PrivateKey.from_private_bytes(raw)
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
        private_raw = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        kid = thumbprint_kid(public_raw)
        sealed = self._secret_box.seal(private_raw, context=_context(kid))
        await conn.execute(self._INSERT, kid, sealed, public_raw, now)
        return kid

    _REVOKE = """
        UPDATE signing_key SET revoked_at = $2, retired_at = coalesce(retired_at, $2)
        WHERE kid = $1 AND revoked_at IS NULL
        RETURNING kid
    """

    async def revoke(self, kid: str, now: datetime) -> bool:
        """Tokens signed with `kid` stop verifying at once (the sign-in check reads
        `revoked_at` on every request). Revoking the current key also retires it;
        the next process to sign makes a new one. False when there is no such
        unrevoked key."""
        async with self._database.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK_KEY)
            revoked = await conn.fetchval(self._REVOKE, kid, now)
        self._current = None
        self._retirement.pop(kid, None)
        return revoked is not None

    _BY_KID = "SELECT public_key, retired_at, revoked_at FROM signing_key WHERE kid = $1"

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
            ended = row["revoked_at"] - self._verify_retired_for if row["revoked_at"] else None
            cached = self._retirement[kid] = (time.monotonic(), ended or row["retired_at"])
        retired_at = cached[1]
        if retired_at is not None and retired_at + self._verify_retired_for <= now:
            return None
        return self._public[kid]

    _PUBLISHED = """
        SELECT kid, public_key, created_at, retired_at FROM signing_key
        WHERE revoked_at IS NULL AND (retired_at IS NULL OR retired_at > $1)
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


def _context(kid: str) -> bytes:
    # Bound as associated data: a sealed key copied to another row does not open.
    return b"signing_key:" + kid.encode()
