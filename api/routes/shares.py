"""Sharing with a doctor: the patient's share routes (/v1/shares...) and the
SMART Health Link endpoints a doctor's viewer calls without authentication
(the manifest and its file locations, CORS open)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post, route
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.current_patient import CurrentPatient
from api.deps import ClockDep, PatientSharesDep, RequestContextDep, ShareManifestsDep
from api.page_cursors import decode_cursor, encode_cursor
from api.problems import domain_error_handler, http_exception_handler, nesting_error_handler
from domain.access import PatientActor
from domain.errors import DomainError, NotFound
from domain.sharing.link import TOKEN_BYTES
from domain.sharing.model import Share, ShareAccess, SharePageCursor
from domain.sharing.patient_shares import ShareRequest
from domain.sharing.recipient import MAX_RECIPIENT_LENGTH, RECIPIENT_PATTERN
from domain.sharing.scope import ShareScope

_TYPE_NAME = Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
# The label's and the passcode's rules are declared for the contract; the checks
# (422 naming the field) stay in the domain (check_request, check_passcode).
_NO_CONTROL = {"extra": {"pattern": r"^[^\x00-\x1f\x7f]*$"}}
_PASSCODE = {"extra": {"pattern": r"^[^\x00-\x1f]*$"}}
_CATEGORY = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]


class ShareScopeIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Empty means a patient summary (problems, medications, allergies,
    immunizations, results of the last 12 months, imaging, documents)."""

    resource_types: Annotated[list[_TYPE_NAME], msgspec.Meta(max_length=50)] = []
    categories: Annotated[list[_CATEGORY], msgspec.Meta(max_length=50)] = []
    hospital_ids: Annotated[list[UUID], msgspec.Meta(max_length=100)] = []
    record_ids: Annotated[list[UUID], msgspec.Meta(max_length=1000)] = []
    since: datetime | None = None
    until: datetime | None = None
    include_sensitive: bool = False


class CreateShareIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    expires_at: datetime
    label: Annotated[str, msgspec.Meta(max_length=80, extra_json_schema=_NO_CONTROL)] | None = None
    passcode: Annotated[str, msgspec.Meta(min_length=4, max_length=64, extra_json_schema=_PASSCODE)] | None = None  # fmt: skip
    long_term: bool = False
    scope: ShareScopeIn = msgspec.field(default_factory=ShareScopeIn)


class ShareScopeOut(msgspec.Struct, rename="camel"):
    resource_types: list[str]
    categories: list[str]
    hospital_ids: list[UUID]
    record_ids: list[UUID]
    since: datetime | None
    until: datetime | None
    include_sensitive: bool


class ShareOut(msgspec.Struct, rename="camel"):
    id: UUID
    label: str | None
    flag: str
    status: str
    long_term: bool
    passcode: bool
    remaining_attempts: int | None
    record_count: int | None
    scope: ShareScopeOut
    consent_id: UUID
    qr_url: str
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None


class ShareCreatedOut(msgspec.Struct, rename="camel"):
    id: UUID
    shlink: str
    viewer_url: str
    qr_url: str
    expires_at: datetime
    flag: str
    label: str | None
    share: ShareOut


class SharePage(msgspec.Struct, rename="camel"):
    items: list[ShareOut]
    next_cursor: str | None


class ShareAccessOut(msgspec.Struct, rename="camel"):
    kind: str
    recipient: str
    at: datetime
    client_address: str | None
    user_agent: str | None
    files_served: int


class ShareAccessList(msgspec.Struct, rename="camel"):
    items: list[ShareAccessOut]


def _utc(value: datetime | None) -> datetime | None:
    """A date-time without a zone is read as UTC (FHIR dates compared with it have one)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _qr_url(share_id: UUID) -> str:
    return f"/v1/shares/{share_id}/qr"


def share_out(share: Share, now: datetime) -> ShareOut:
    scope = share.scope
    return ShareOut(
        id=share.id,
        label=share.label,
        flag=share.flag,
        status=share.status_at(now),
        long_term=share.long_term,
        passcode=share.passcode_hash is not None,
        remaining_attempts=share.attempts_left if share.passcode_hash else None,
        record_count=None if share.long_term else len(share.record_ids),
        scope=ShareScopeOut(
            resource_types=list(scope.resource_types),
            categories=list(scope.categories),
            hospital_ids=list(scope.hospital_ids),
            record_ids=list(scope.record_ids),
            since=scope.since,
            until=scope.until,
            include_sensitive=scope.include_sensitive,
        ),
        consent_id=share.consent_id,
        qr_url=_qr_url(share.id),
        expires_at=share.expires_at,
        created_at=share.created_at,
        revoked_at=share.revoked_at,
    )


_SHARE_ID = PathParameter(description="the share's id (not its link)")
_RAISES = [NotAuthorizedException, NotFoundException]


@post(
    "/v1/shares",
    operation_id="createShare",
    summary="Share with a doctor: a SMART Health Link, its viewer URL and QR code",
    description="An empty `scope` shares a patient summary. Sensitive records (HIV, mental "
    "health, substance use, reproductive health, genetics, restricted confidentiality) are "
    "left out unless `scope.includeSensitive`. A snapshot share is encrypted now and phr "
    "forgets its key (its QR code can be fetched for 15 minutes); a `longTerm` share is "
    "rebuilt on every request.",
    tags=["shares"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
    status_code=201,
)
async def create_share(
    patient_shares: PatientSharesDep,
    clock: ClockDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    data: JSONBody[CreateShareIn],
) -> ShareCreatedOut:
    scope = data.scope
    request = ShareRequest(
        expires_at=data.expires_at,
        label=data.label,
        passcode=data.passcode,
        long_term=data.long_term,
        scope=ShareScope(
            resource_types=tuple(dict.fromkeys(scope.resource_types)),
            categories=tuple(dict.fromkeys(scope.categories)),
            hospital_ids=tuple(dict.fromkeys(scope.hospital_ids)),
            record_ids=tuple(dict.fromkeys(scope.record_ids)),
            since=_utc(scope.since),
            until=_utc(scope.until),
            include_sensitive=scope.include_sensitive,
        ),
    )
    created = await patient_shares.create(
        PatientActor(patient.patient_id), request, context=context
    )
    share = created.share
    return ShareCreatedOut(
        id=share.id,
        shlink=created.shlink,
        viewer_url=created.viewer_url,
        qr_url=_qr_url(share.id),
        expires_at=share.expires_at,
        flag=share.flag,
        label=share.label,
        share=share_out(share, clock.now()),
    )


@get(
    "/v1/shares",
    operation_id="listShares",
    summary="The patient's shares, active and ended, newest first",
    tags=["shares"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
)
async def list_shares(
    patient_shares: PatientSharesDep,
    clock: ClockDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    cursor: Annotated[
        str | None, QueryParameter(description="nextCursor from the previous page", max_length=200)
    ] = None,
    limit: Annotated[int, QueryParameter(description="page size", ge=1, le=100)] = 20,
) -> SharePage:
    after = decode_cursor(cursor, SharePageCursor) if cursor else None
    items = await patient_shares.page(
        PatientActor(patient.patient_id), after, limit + 1, context=context
    )
    page = items[:limit]
    now = clock.now()
    return SharePage(
        items=[share_out(s, now) for s in page],
        next_cursor=(
            encode_cursor(SharePageCursor(created_at=page[-1].created_at, id=page[-1].id))
            if len(items) > limit
            else None
        ),
    )


@get(
    "/v1/shares/{share_id:uuid}",
    operation_id="getShare",
    summary="One share",
    tags=["shares"],
    raises=_RAISES,
    security=[{"bearer": []}],
)
async def get_share(
    patient_shares: PatientSharesDep,
    clock: ClockDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    share_id: Annotated[UUID, _SHARE_ID],
) -> ShareOut:
    share = await patient_shares.get(PatientActor(patient.patient_id), share_id, context=context)
    return share_out(share, clock.now())


@delete(
    "/v1/shares/{share_id:uuid}",
    operation_id="revokeShare",
    summary="Revoke a share: its next manifest request gets 404",
    tags=["shares"],
    raises=_RAISES,
    security=[{"bearer": []}],
    status_code=204,
)
async def revoke_share(
    patient_shares: PatientSharesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    share_id: Annotated[UUID, _SHARE_ID],
) -> None:
    await patient_shares.revoke(PatientActor(patient.patient_id), share_id, context=context)


@get(
    "/v1/shares/{share_id:uuid}/qr",
    operation_id="getShareQr",
    summary="The share's viewer URL as a QR code (PNG, or SVG with ?format=svg)",
    description="Error correction level M. A snapshot share's link is held by phr for 15 "
    "minutes after creation only; later the app shows it from its own copy.",
    tags=["shares"],
    raises=[*_RAISES, ValidationException],
    security=[{"bearer": []}],
    media_type="image/png",
)
async def get_share_qr(
    request: Request[Any, Any, Any],
    patient_shares: PatientSharesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    share_id: Annotated[UUID, _SHARE_ID],
    format: Annotated[
        Literal["png", "svg"], QueryParameter(description="image format: png or svg")
    ] = "png",
) -> Response[bytes]:
    image = await patient_shares.qr(
        PatientActor(patient.patient_id), share_id, format, context=context
    )
    # The same bytes either way: some client generators read only octet-stream as bytes.
    offered = ["image/png" if format == "png" else "image/svg+xml", "application/octet-stream"]
    return Response(
        image,
        media_type=request.accept.best_match(offered, default=offered[0]),
        # The image holds the key: never cached anywhere.
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@get(
    "/v1/shares/{share_id:uuid}/accesses",
    operation_id="listShareAccesses",
    summary="Who opened the share: recipient, time, client address, user agent, files served",
    tags=["shares"],
    raises=[*_RAISES, ValidationException],
    security=[{"bearer": []}],
)
async def list_share_accesses(
    patient_shares: PatientSharesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    share_id: Annotated[UUID, _SHARE_ID],
    limit: Annotated[int, QueryParameter(description="how many, newest first", ge=1, le=500)] = 100,
) -> ShareAccessList:
    items: list[ShareAccess] = await patient_shares.accesses(
        PatientActor(patient.patient_id), share_id, limit, context=context
    )
    return ShareAccessList(
        items=[
            ShareAccessOut(
                kind=a.kind,
                recipient=a.recipient,
                at=a.accessed_at,
                client_address=a.client_address,
                user_agent=a.user_agent,
                files_served=a.files,
            )
            for a in items
        ]
    )


# --- the SMART Health Link endpoints (no authentication, CORS open) ---------------

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
    "Cache-Control": "no-store",
}
# TOKEN_BYTES (32) random bytes in unpadded base64url: 43 characters.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
assert TOKEN_BYTES == 32


def _with_cors(handler: Callable[[Request[Any, Any, Any], Any], Response]) -> Callable:
    """Errors carry the CORS headers too: another origin's viewer must be able to
    read a 401's remainingAttempts and a 404."""

    def wrapped(request: Request[Any, Any, Any], exc: Any) -> Response:
        response = handler(request, exc)
        response.headers.update(CORS_HEADERS)
        return response

    return wrapped


_CORS_ERRORS: dict[Any, Any] = {
    DomainError: _with_cors(domain_error_handler),
    HTTPException: _with_cors(http_exception_handler),
    RecursionError: _with_cors(nesting_error_handler),
}


class ManifestIn(msgspec.Struct, rename="camel"):
    """Unknown fields are ignored, as the SHL spec asks of servers."""

    recipient: Annotated[
        str, msgspec.Meta(min_length=1, max_length=MAX_RECIPIENT_LENGTH, pattern=RECIPIENT_PATTERN)
    ]
    passcode: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    embedded_length_max: Annotated[int, msgspec.Meta(ge=0)] | None = None


class ManifestFileOut(msgspec.Struct, rename="camel", omit_defaults=True):
    content_type: str
    embedded: str | None = None
    location: str | None = None


class ManifestOut(msgspec.Struct, rename="camel"):
    files: list[ManifestFileOut]


def _check_token(token: str) -> str:
    if not _TOKEN.match(token):
        raise NotFound("No such link.")
    return token


_TOKEN_PARAM = PathParameter(description="the random part of the link's url", max_length=64)


@post(
    "/shl/{token:str}",
    operation_id="getShlManifest",
    summary="SMART Health Link manifest (no authentication; the link is the authority)",
    description="404 when the link is unknown, expired, revoked or disabled; 401 with "
    "`remainingAttempts` for a wrong passcode (five over the link's life); 429 when "
    "throttled.",
    tags=["smart-health-links"],
    raises=[
        NotFoundException,
        NotAuthorizedException,
        TooManyRequestsException,
        ValidationException,
        ClientException,
    ],
    security=[],
    status_code=200,
    exception_handlers=_CORS_ERRORS,
)
async def shl_manifest(
    share_manifests: ShareManifestsDep,
    context: RequestContextDep,
    token: Annotated[str, _TOKEN_PARAM],
    data: JSONBody[ManifestIn],
) -> Response[ManifestOut]:
    files = await share_manifests.manifest(
        _check_token(token),
        recipient=data.recipient,
        passcode=data.passcode,
        embedded_length_max=data.embedded_length_max,
        context=context,
    )
    body = ManifestOut(
        files=[
            ManifestFileOut(content_type=f.content_type, embedded=f.embedded, location=f.location)
            for f in files
        ]
    )
    return Response(body, headers=CORS_HEADERS)


@route(
    "/shl/{token:str}",
    http_method=["OPTIONS"],
    operation_id="preflightShlManifest",
    summary="CORS preflight for the manifest",
    tags=["smart-health-links"],
    security=[],
    status_code=204,
    include_in_schema=False,
)
async def shl_manifest_preflight(token: Annotated[str, _TOKEN_PARAM]) -> Response[None]:
    return Response(None, status_code=204, headers=CORS_HEADERS)


@get(
    "/shl/files/{ticket:str}",
    operation_id="getShlFile",
    summary="A file `location` from a manifest: one use, within 30 minutes",
    tags=["smart-health-links"],
    raises=[NotFoundException, PermissionDeniedException],
    security=[],
    media_type="application/jose",
    exception_handlers=_CORS_ERRORS,
)
async def shl_file(
    request: Request[Any, Any, Any],
    share_manifests: ShareManifestsDep,
    context: RequestContextDep,
    ticket: Annotated[str, _TOKEN_PARAM],
) -> Response[bytes]:
    served = await share_manifests.file(_check_token(ticket), context=context)
    offered = [served.media_type, "application/octet-stream"]
    media_type = request.accept.best_match(offered, default=offered[0])
    return Response(served.jwe, media_type=media_type, headers=CORS_HEADERS)
