"""Sign up, sign in, token refresh and sign out; the public keys for access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.deps import AuthenticationDep, NotifierDep, RequestContextDep
from domain.accounts.account import Account
from domain.accounts.passwords import MAX_PASSWORD_LENGTH
from domain.accounts.tokens import TokenPair

Email = Annotated[str, msgspec.Meta(max_length=320, description="The account's email address")]
Password = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD_LENGTH)]
OpaqueToken = Annotated[str, msgspec.Meta(max_length=512)]


class EmailTakenResponse(ClientException):
    """Documents the 409 answer (the email already has an account) in OpenAPI."""

    status_code = 409


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email
    password: Annotated[
        str,
        msgspec.Meta(
            max_length=MAX_PASSWORD_LENGTH,
            description="At least 8 characters; not a commonly used password, not the email.",
        ),
    ]
    display_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email
    password: Password


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    refresh_token: OpaqueToken


class Profile(msgspec.Struct, rename="camel"):
    id: UUID
    email: str
    display_name: str | None
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> Profile:
        return cls(
            id=account.id,
            email=account.email,
            display_name=account.display_name,
            created_at=account.created_at,
        )


class Tokens(msgspec.Struct, rename="camel"):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> Tokens:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type="Bearer",
            expires_in=pair.expires_in,
        )


class Jwk(msgspec.Struct):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class JwkSet(msgspec.Struct):
    keys: list[Jwk]


# Tokens must never be cached by anything in between.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@post(
    "/v1/auth/register",
    operation_id="register",
    summary="Create a patient account",
    tags=["auth"],
    status_code=HTTP_201_CREATED,
    raises=[
        ValidationException,
        ClientException,
        EmailTakenResponse,
        TooManyRequestsException,
        ServiceUnavailableException,
    ],
)
async def register(
    data: JSONBody[RegisterRequest], authentication: AuthenticationDep, context: RequestContextDep
) -> Profile:
    """422 names the field that is not acceptable (e.g. a common password); 409 when
    the email (ignoring case) already has an account."""
    account = await authentication.register(
        email=data.email,
        password=data.password,
        display_name=data.display_name,
        context=context,
    )
    return Profile.of(account)


@post(
    "/v1/auth/login",
    operation_id="login",
    summary="Sign in with email and password",
    tags=["auth"],
    status_code=HTTP_200_OK,
    raises=[
        ValidationException,
        NotAuthorizedException,
        TooManyRequestsException,
        ServiceUnavailableException,
    ],
)
async def login(
    data: JSONBody[LoginRequest],
    authentication: AuthenticationDep,
    notifier: NotifierDep,
    context: RequestContextDep,
) -> Response[Tokens]:
    """An unknown email and a wrong password give the same 401. Repeated failures
    for one account or from one address answer 429 with Retry-After."""
    pair = await authentication.login(email=data.email, password=data.password, context=context)
    # A sign-in from a device not seen before tells the patient.
    claims = await authentication.authenticate(pair.access_token)
    await notifier.signed_in(claims.patient_id, context.user_agent)
    return Response(Tokens.of(pair), headers=_NO_STORE)


@post(
    "/v1/auth/refresh",
    operation_id="refreshTokens",
    summary="Exchange a refresh token for a new token pair",
    tags=["auth"],
    status_code=HTTP_200_OK,
    raises=[ValidationException, NotAuthorizedException, TooManyRequestsException],
)
async def refresh(
    data: JSONBody[RefreshRequest], authentication: AuthenticationDep, context: RequestContextDep
) -> Response[Tokens]:
    """The presented token is spent. Presenting a spent token again revokes every
    token descended from the same sign-in."""
    pair = await authentication.refresh(refresh_token=data.refresh_token, context=context)
    return Response(Tokens.of(pair), headers=_NO_STORE)


@post(
    "/v1/auth/logout",
    operation_id="logout",
    summary="Sign out: revoke the refresh token and its family",
    tags=["auth"],
    status_code=HTTP_204_NO_CONTENT,
    raises=[ValidationException, NotAuthorizedException, TooManyRequestsException],
)
async def logout(
    data: JSONBody[RefreshRequest], authentication: AuthenticationDep, context: RequestContextDep
) -> None:
    await authentication.logout(refresh_token=data.refresh_token, context=context)


@get(
    "/.well-known/jwks.json",
    operation_id="getJwks",
    summary="Public keys that verify access tokens (RFC 7517)",
    tags=["auth"],
)
async def jwks(authentication: AuthenticationDep) -> Response[JwkSet]:
    keys = await authentication.public_keys()
    return Response(
        JwkSet(keys=[Jwk(**key) for key in keys]),
        headers={"Cache-Control": "public, max-age=60"},
    )
