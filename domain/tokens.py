"""Tokens a patient holds after signing in.

Access tokens are short-lived signed JWTs (RFC 9068 profile, verified per RFC 8725);
the domain sees them only through the `AccessTokens` port. Refresh tokens are opaque
random strings, stored only as a SHA-256 hash, rotated on every use within a family
(RFC 9700 section 4.14): presenting a spent one revokes the family."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

ACCESS_TOKEN_AUDIENCE = "phr-api"
ACCESS_TOKEN_TYPE = "at+jwt"


class AccessClaims(msgspec.Struct, frozen=True, kw_only=True):
    patient_id: UUID
    token_id: str
    expires_at: datetime
    # The signing key's id: a token signed with a revoked key is refused at once.
    kid: str = ""


class IssuedAccessToken(msgspec.Struct, frozen=True):
    token: str
    expires_in: int


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: int
    patient_id: UUID
    family_id: UUID


class AccessTokens(Protocol):
    async def issue(self, patient_id: UUID, now: datetime) -> IssuedAccessToken: ...

    async def verify(self, token: str, now: datetime) -> AccessClaims:
        """Raises AuthenticationFailed for anything but a valid token."""
        ...


def new_refresh_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    # A plain hash is enough: the token has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class RefreshTokenState(msgspec.Struct, frozen=True, kw_only=True):
    family_id: UUID
    patient_id: UUID
    expires_at: datetime
    spent_at: datetime | None
    family_revoked_at: datetime | None
    # However often it is rotated, a family ends here (sign in again).
    family_expires_at: datetime | None = None


class RefreshTokenStore(Protocol):
    async def start_family(
        self,
        *,
        patient_id: UUID,
        token_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
        family_expires_at: datetime,
    ) -> UUID: ...

    async def lock(self, token_hash: bytes) -> RefreshTokenState | None:
        """The token's state, with its family locked until the transaction ends, so
        concurrent uses of one family line up."""
        ...

    async def spend_and_issue(
        self,
        *,
        spent_hash: bytes,
        state: RefreshTokenState,
        new_hash: bytes,
        issued_at: datetime,
        expires_at: datetime,
    ) -> bool:
        """Marks the token spent only if it was not; False if someone else spent it."""
        ...

    async def revoke_family(
        self, family_id: UUID, patient_id: UUID, at: datetime, reason: str
    ) -> None: ...
