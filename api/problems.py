"""Every error leaves as RFC 9457 application/problem+json, mapped here and only here."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
import botocore.exceptions
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from domain.erasure_traces import Gone
from domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotAcceptable,
    NotFound,
    Overloaded,
    RateLimited,
)
from domain.sharing.passcode import WrongPasscode

log = logging.getLogger("phr.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://phr.example/problems/"

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    AuthenticationFailed: 401,
    Forbidden: 403,
    RateLimited: 429,
    Overloaded: 503,
    Gone: 410,
    NotAcceptable: 406,
}


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details; `errors` names each bad field of a request."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str | None = None,
    *,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> Response[Problem]:
    return Response(
        Problem(
            type=PROBLEM_TYPE_BASE + kind,
            title=title,
            status=status,
            detail=detail,
            instance=instance,
            errors=errors or None,
        ),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _status_for(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in _DOMAIN_STATUS:
            return _DOMAIN_STATUS[cls]  # type: ignore[index]
    return 400


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    status = _status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_seconds)
        headers["RateLimit-Policy"] = f'"default";q={exc.limit};w={exc.window_seconds}'
        headers["RateLimit"] = f'"default";r=0;t={exc.retry_after_seconds}'
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if isinstance(exc, AuthenticationFailed) and not isinstance(exc, WrongPasscode):
        headers["WWW-Authenticate"] = 'Bearer realm="phr"'
    if isinstance(exc, WrongPasscode):
        # RFC 9457 extension member: what the SMART Health Links spec asks for.
        problem = msgspec.to_builtins(
            Problem(
                type=PROBLEM_TYPE_BASE + exc.kind, title=exc.title, status=status, detail=exc.detail
            )
        )
        problem["remainingAttempts"] = exc.remaining_attempts
        return Response(problem, status_code=status, media_type=PROBLEM_MEDIA_TYPE)
    return problem_response(
        status, exc.kind, exc.title, exc.detail, errors=exc.errors, headers=headers or None
    )


def _field_problems(extra: Any) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = item.get("key") or item.get("source") or "body"
                problems.append(FieldProblem(field=str(key), message=str(item.get("message", ""))))
    return problems


def http_exception_handler(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[Problem]:
    status = exc.status_code
    malformed = "malformed" in str(exc.detail).lower()
    if status == 400 and (malformed or not isinstance(exc, ValidationException)):
        # Litestar raises a bare 400 when the body does not parse; its detail is
        # the decoder's own message (e.g. "Input data was truncated").
        return problem_response(
            400,
            "malformed-body",
            "The request body is not valid JSON",
            f"The body could not be parsed as JSON: {exc.detail}",
        )
    if isinstance(exc, ValidationException):
        return problem_response(
            400,
            "invalid-request",
            "The request has invalid fields",
            "One or more fields are missing or invalid; see errors.",
            errors=_field_problems(exc.extra),
        )
    kinds = {
        401: ("authentication-required", "Authentication required"),
        404: ("not-found", "Not found"),
        405: ("method-not-allowed", "Method not allowed"),
        413: ("body-too-large", "Request body too large"),
        415: ("unsupported-media-type", "Unsupported media type"),
        429: ("rate-limited", "Too many requests"),
        503: ("unavailable", "Service unavailable"),
    }
    kind, title = kinds.get(status, ("http-error", exc.detail if status < 500 else "Server error"))
    detail = exc.detail if status < 500 else None
    headers = dict(exc.headers or {}) if status < 500 else None
    return problem_response(status, kind, title, detail, headers=headers)


def stored_value_error_handler(
    request: Request[Any, Any, Any], exc: asyncpg.exceptions.DataError
) -> Response[Problem]:
    # A safety net: input that passed validation but cannot be stored (a NUL
    # character in text, a number out of range) is the caller's to fix, not a 500.
    log.warning("value refused by the database", extra={"error": type(exc).__name__})
    return problem_response(
        422,
        "unstorable-value",
        "A value cannot be stored",
        "A value in the request cannot be stored (for example a NUL character in text).",
    )


# A restarting PostgreSQL is back within seconds; a full disk needs an operator.
DATABASE_RETRY_AFTER_SECONDS = 2
DISK_RETRY_AFTER_SECONDS = 30


class OutageLog(Protocol):
    def failed(self, service: str, reason: str, detail: str = "") -> None: ...


def _outages(request: Request[Any, Any, Any]) -> OutageLog | None:
    # Put in the app's state by its wiring: one log line per outage, not per request.
    return getattr(request.app.state, "outages", None)


def unavailable_response(
    request: Request[Any, Any, Any], exc: Exception, service: str, reason: str, retry_after: int
) -> Response[Problem]:
    outages = _outages(request)
    if outages is not None:
        outages.failed(service, reason, f"{type(exc).__name__}: {exc}")
    else:
        log.warning("%s unavailable (%s)", service, reason, extra={"error": type(exc).__name__})
    return problem_response(
        503,
        "unavailable",
        "Service unavailable",
        f"The {service} is unavailable ({reason}); try again later.",
        headers={"Retry-After": str(retry_after)},
    )


def unavailable_handler(
    database_reason: Callable[[BaseException], str | None],
) -> Callable[[Request[Any, Any, Any], Exception], Response[Problem]]:
    """The handler for errors that may mean a backing service cannot serve now:
    a full disk, or (as `database_reason` tells) the database down, restarting or
    too slow: 503 with Retry-After, one log line per outage, no traceback per
    request. Anything else stays a 500."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return unavailable_response(request, exc, "disk", "disk full", DISK_RETRY_AFTER_SECONDS)
        reason = database_reason(exc)
        if reason is None:
            return internal_error_handler(request, exc)
        retry = DISK_RETRY_AFTER_SECONDS if reason == "disk full" else DATABASE_RETRY_AFTER_SECONDS
        return unavailable_response(request, exc, "database", reason, retry)

    return handle


# The S3 endpoint cannot be reached or does not answer (after botocore's retries).
OBJECT_STORAGE_UNAVAILABLE: tuple[type[Exception], ...] = (
    botocore.exceptions.ConnectionError,  # refused, connect timeout, proxy
    botocore.exceptions.HTTPClientError,  # read timeout, connection closed
)


def object_storage_unavailable_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[Problem]:
    """Files are out of reach; records, the timeline and shares do not need them."""
    return unavailable_response(
        request, exc, "object storage", "unreachable", DISK_RETRY_AFTER_SECONDS
    )


def nesting_error_handler(
    request: Request[Any, Any, Any], exc: RecursionError
) -> Response[Problem]:
    # msgspec raises RecursionError (not a decode error) on JSON nested about
    # 1,000 deep: the body is the caller's to fix.
    return problem_response(
        400,
        "malformed-body",
        "The request body is not valid JSON",
        "The JSON body is nested too deeply.",
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The log has the trace (with the request id); the client gets nothing internal.
    log.exception("unhandled error", exc_info=exc)
    return problem_response(
        500,
        "internal-error",
        "Internal server error",
        "Something went wrong on our side. Quote the request id if you report it.",
    )


exception_handlers: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_exception_handler,
    asyncpg.exceptions.DataError: stored_value_error_handler,
    **dict.fromkeys(OBJECT_STORAGE_UNAVAILABLE, object_storage_unavailable_handler),
    RecursionError: nesting_error_handler,
    Exception: internal_error_handler,
}
