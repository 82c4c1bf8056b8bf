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
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from api.deps import AuthenticationDep, RegistrationDep, RequestContextDep
from domain.accounts.account import Account
from domain.accounts.passwords import MAX_PASSWORD_LENGTH
from domain.accounts.profile_rules import DEFAULT_TIME_ZONE, locale_from_accept_language
from domain.accounts.tokens import TokenPair

Email = Annotated[str, msgspec.Meta(max_length=320, description="The account's email address")]
Password = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD_LENGTH)]
OpaqueToken = Annotated[str, msgspec.Meta(max_length=512)]
Locale = Annotated[str, msgspec.Meta(max_length=16, description="en or zh-CN")]
TimeZone = Annotated[
    str, msgspec.Meta(max_length=64, description="An IANA time zone, e.g. Asia/Shanghai")
]


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
    locale: Locale | None = None
    time_zone: TimeZone | None = None


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    email: Email
    password: Password
    device_name: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=200,
                description="How the session list names this device; else taken from User-Agent.",
            ),
        ]
        | None
    ) = None


class Accepted(msgspec.Struct, rename="camel"):
    """The same for every address, known or not."""

    status: Literal["accepted"]
    detail: str


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    refresh_token: OpaqueToken


class Profile(msgspec.Struct, rename="camel"):
    id: UUID
    email: str
    email_verified: bool
    display_name: str | None
    locale: str
    time_zone: str
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> Profile:
        return cls(
            id=account.id,
            email=account.email,
            email_verified=account.email_verified,
            display_name=account.display_name,
            locale=account.locale,
            time_zone=account.time_zone,
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


REGISTRATION_ACCEPTED = Accepted(
    status="accepted",
    detail="If this address can be used for a new account, a code to confirm it is on its "
    "way; if it already has an account, its owner has been told.",
)


@post(
    "/v1/auth/register",
    operation_id="register",
    summary="Create a patient account; answers the same whether or not the address is known",
    tags=["auth"],
    status_code=HTTP_202_ACCEPTED,
    raises=[
        ValidationException,
        ClientException,
        TooManyRequestsException,
        ServiceUnavailableException,
    ],
)
async def register(
    data: JSONBody[RegisterRequest],
    registration: RegistrationDep,
    context: RequestContextDep,
    accept_language: Annotated[
        str | None,
        HeaderParameter(
            name="Accept-Language",
            description="Chooses the account's language when `locale` is not given",
        ),
    ] = None,
) -> Accepted:
    """A new address gets a verification code by mail (see verifyEmail); a known one
    a mail saying someone tried to register with it. 422 names a field that is not
    acceptable (e.g. a common password); 429 when an address or client asks too often."""
    await registration.register(
        email=data.email,
        password=data.password,
        display_name=data.display_name,
        locale=data.locale or locale_from_accept_language(accept_language),
        time_zone=data.time_zone or DEFAULT_TIME_ZONE,
        context=context,
    )
    return REGISTRATION_ACCEPTED


@post(
    "/v1/auth/login",
    operation_id="login",
    summary="Sign in with email and password",
    tags=["auth"],
    status_code=HTTP_200_OK,
    raises=[
        ValidationException,
        NotAuthorizedException,
        PermissionDeniedException,
        TooManyRequestsException,
        ServiceUnavailableException,
    ],
)
async def login(
    data: JSONBody[LoginRequest],
    authentication: AuthenticationDep,
    context: RequestContextDep,
) -> Response[Tokens]:
    """An unknown email and a wrong password give the same 401. The right password
    of an address not verified yet gets 403 `email-not-verified`. Repeated failures
    for one account or from one address answer 429 with Retry-After."""
    # A sign-in from a device not seen before tells the patient (in the
    # sign-in's own transaction: see Authentication's on_signed_in).
    pair = await authentication.login(
        email=data.email, password=data.password, context=context, device_name=data.device_name
    )
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
