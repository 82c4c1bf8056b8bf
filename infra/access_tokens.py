"""Access tokens: EdDSA (Ed25519) JWTs in the RFC 9068 profile, verified as RFC 8725
asks: the algorithm is pinned, the key is chosen by `kid` among our own keys only,
`typ` must say it is an access token, and every claim must be present and right."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from domain.accounts.tokens import (
    ACCESS_TOKEN_AUDIENCE,
    ACCESS_TOKEN_TYPE,
    AccessClaims,
    IssuedAccessToken,
)
from domain.errors import AuthenticationFailed
from infra.pg.signing_keys import PgSigningKeys, b64url

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"]
# Tolerated clock difference between API processes.
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 4096
_ACCEPTED_TYP = {ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE}


def _refused() -> AuthenticationFailed:
    # One message for every reason: the caller learns nothing about which check failed.
    return AuthenticationFailed("The access token is not valid.")


# Tokens whose signature was checked, keyed by the whole token: a client sends the
# same token with every request of its 15-minute life, and an Ed25519 check costs
# more than the rest of the request's checks. Bounded; oldest-used goes first.
VERIFIED_CACHE_SIZE = 10_000


class JwtAccessTokens:
    def __init__(self, keys: PgSigningKeys, *, issuer: str, ttl_seconds: int):
        self._keys = keys
        self._issuer = issuer
        self._ttl = ttl_seconds
        # token -> (iat, nbf, exp), and the claims as checked (with the key's id)
        self._verified: OrderedDict[str, tuple[tuple[float, float, float], AccessClaims]] = (
            OrderedDict()
        )

    @property
    def keys(self) -> PgSigningKeys:
        return self._keys

    async def issue(
        self, patient_id: UUID, now: datetime, session_id: UUID | None = None
    ) -> IssuedAccessToken:
        key = await self._keys.current(now)
        issued_at = int(now.timestamp())
        claims = {
            "iss": self._issuer,
            "aud": ACCESS_TOKEN_AUDIENCE,
            "sub": str(patient_id),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        token = jwt.encode(
            claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
        )
        return IssuedAccessToken(token, self._ttl)

    async def verify(self, token: str, now: datetime) -> AccessClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise _refused()
        cached = self._verified.get(token)
        if cached is not None:
            times, checked = cached
            # The signature and the claims stand; the key's standing and the times
            # are checked afresh: a retired key, or an expired token, is refused
            # all the same.
            if await self._keys.verification_key(checked.kid, now) is None:
                self._verified.pop(token, None)
                raise _refused()
            self._check_times(times, now)
            self._verified.move_to_end(token)
            return checked
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused() from None
        kid = header.get("kid")
        if (
            header.get("alg") != ALGORITHM
            or not isinstance(header.get("typ"), str)
            or header["typ"].lower() not in _ACCEPTED_TYP
            or not isinstance(kid, str)
            or not kid
            or "crit" in header
        ):
            raise _refused()
        public_key = await self._keys.verification_key(kid, now)
        if public_key is None:
            raise _refused()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=ACCESS_TOKEN_AUDIENCE,
                issuer=self._issuer,
                # Time claims are checked below against the service's clock.
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise _refused() from None
        times = self._times(claims)
        self._check_times(times, now)
        checked = self._checked(claims, kid)
        self._verified[token] = (times, checked)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return checked

    @staticmethod
    def _times(claims: dict[str, Any]) -> tuple[float, float, float]:
        times = [claims.get(name) for name in ("iat", "nbf", "exp")]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
            raise _refused()
        iat, nbf, exp = times
        return iat, nbf, exp

    def _check_times(self, times: tuple[float, float, float], now: datetime) -> None:
        iat, nbf, exp = times
        moment = now.timestamp()
        if exp <= moment - LEEWAY_SECONDS or nbf > moment + LEEWAY_SECONDS:
            raise _refused()
        if iat > moment + LEEWAY_SECONDS or exp - iat > self._ttl + LEEWAY_SECONDS:
            raise _refused()

    def _checked(self, claims: dict[str, Any], kid: str) -> AccessClaims:
        """The claims other than the times (checked by `_check_times`)."""
        exp = claims["exp"]
        jti = claims.get("jti")
        sub = claims.get("sub")
        if not isinstance(jti, str) or not jti or not isinstance(sub, str):
            raise _refused()
        sid = claims.get("sid")
        try:
            patient_id = UUID(sub)
            session_id = UUID(sid) if sid is not None else None
        except (ValueError, TypeError, AttributeError):
            raise _refused() from None
        return AccessClaims(
            patient_id=patient_id,
            token_id=jti,
            expires_at=datetime.fromtimestamp(exp, UTC),
            kid=kid,
            session_id=session_id,
        )

    async def jwks(self, now: datetime) -> list[dict[str, str]]:
        """RFC 7517/8037 public JWKs for the current and still-verifying keys."""
        return [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64url(key.public_key),
                "kid": key.kid,
                "use": "sig",
                "alg": ALGORITHM,
            }
            for key in await self._keys.published(now)
        ]


def verify_retired_for(ttl_seconds: int) -> timedelta:
    return timedelta(seconds=ttl_seconds + 2 * LEEWAY_SECONDS)
