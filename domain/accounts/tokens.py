"""Tokens a patient holds after signing in.

Access tokens are short-lived signed JWTs (RFC 9068 profile, verified per RFC 8725);
the domain sees them only through the `AccessTokens` port. Refresh tokens are opaque
random strings, stored only as a SHA-256 hash, rotated on every use within a family
(RFC 9700 section 4.14): presenting a spent one revokes the family."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
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
    # The session (refresh-token family) the token was issued for; None only for
    # tokens issued before sessions were named in them.
    session_id: UUID | None = None


class IssuedAccessToken(msgspec.Struct, frozen=True):
    token: str
    expires_in: int


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: int
    patient_id: UUID
    family_id: UUID


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
