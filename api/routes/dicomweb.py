"""DICOMweb (PS3.18) over the patient's stored studies, under one prefix:
`/v1/dicomweb` with the patient's bearer token, or `/v1/dicomweb/t/{token}` with a
study-scoped viewer token for viewers that cannot send a header (the token is in
the path, which the access log never records: it logs the route template).

QIDO-RS: `/studies`, `/series`, `/instances` and the same searches within a study
or series, with attribute filters by keyword or tag, `includefield`, `limit` and
`offset`. WADO-RS: instances as `multipart/related; type="application/dicom"`
(streamed from storage, one instance in memory at most), `frames` as bulk data,
`metadata` as DICOM JSON, `rendered` frames as PNG or JPEG, and each series'
`thumbnail` (its preview). A share's viewer link opens a session through
`POST /v1/dicomweb/share-sessions`, whose token then serves under `/t/{token}`.

Each handler serves every level of one shape (study, series, instance) under
both prefixes: the paths differ only in which UIDs they name, so one handler
takes them as optional path parameters and `_operation` names each path."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.params import JSONBody, Parameter, PathParameter
from litestar.response import Stream

from api.current_patient import provide_current_patient
from api.deps import AuthenticationDep, DicomWebDep, RequestContextDep
from domain.errors import FieldProblem, InvalidInput
from domain.imaging.dicomweb import MAX_QIDO_LIMIT, DicomWeb, DicomWebCaller, QidoQuery
from domain.sharing.recipient import MAX_RECIPIENT_LENGTH, RECIPIENT_PATTERN

DICOM_JSON = "application/dicom+json"
_UID = r"^[0-9]+(\.[0-9]+)*$"
_PAGING = {"limit", "offset", "includefield", "fuzzymatching"}

_STUDY_UID = PathParameter(description="StudyInstanceUID", pattern=_UID, max_length=64)
_SERIES_UID = PathParameter(description="SeriesInstanceUID", pattern=_UID, max_length=64)
_INSTANCE_UID = PathParameter(description="SOPInstanceUID", pattern=_UID, max_length=64)
StudyUid = Annotated[str, _STUDY_UID]
SeriesUid = Annotated[str, _SERIES_UID]
InstanceUid = Annotated[str, _INSTANCE_UID]
# In a handler that also serves paths without them (see _operation).
SomeStudyUid = Annotated[str | None, _STUDY_UID]
SomeSeriesUid = Annotated[str | None, _SERIES_UID]
SomeInstanceUid = Annotated[str | None, _INSTANCE_UID]
Frame = Annotated[int, Parameter(description="frame number, from 1", ge=1, le=100_000)]
FrameList = Annotated[
    str,
    Parameter(
        description="frame numbers from 1, comma-separated (at most 100)",
        pattern=r"^[1-9][0-9]{0,5}(,[1-9][0-9]{0,5}){0,99}$",
    ),
]


async def provide_dicomweb_caller(
    request: Request[Any, Any, Any], dicomweb: DicomWebDep, authentication: AuthenticationDep
) -> DicomWebCaller:
    # A handler serves paths with and without some UIDs (optional parameters):
    # a UID is taken from the path only, never from a query parameter so named.
    for name in _NAMING_PARAMS:
        if name in request.query_params and name not in request.path_params:
            raise InvalidInput(
                f"{name} is a part of the path, not a query parameter.",
                errors=[FieldProblem(name, "not a query parameter")],
            )
    token = request.path_params.get("token")
    if token:
        return dicomweb.viewer_caller(token)
    patient = await provide_current_patient(request, authentication)
    return dicomweb.patient_caller(patient.patient_id)


CallerDep = NamedDependency[DicomWebCaller]


class UnrenderableImage(ClientException):
    """Documents the 422 answer (pixel data that cannot be decoded) in OpenAPI."""

    status_code = 422


class UnacceptableFrames(ClientException):
    """Documents the 406 answer (no accepted media type for the frames) in OpenAPI."""

    status_code = 406


def _operation(names: str | dict[str, str]) -> Any:
    """One handler serves several paths: each is named by the last UID (or frame)
    parameter it carries (`""` for none); through a viewer token, the name gets
    `WithViewerToken`."""

    def create(handler: Any, method: Any, components: list[Any]) -> str:
        params = [getattr(c, "name", None) for c in components]
        last = next((p for p in reversed(params) if p in _NAMING_PARAMS), "")
        name = names if isinstance(names, str) else names[last]
        return f"{name}WithViewerToken" if "token" in params else name

    return create


_NAMING_PARAMS = ("study", "series", "instance", "frame")


def _paths(*tails: str) -> list[str]:
    return [f"/v1/dicomweb{p}{tail}" for tail in tails for p in ("", "/t/{token:str}")]


def _query(request: Request[Any, Any, Any]) -> QidoQuery:
    from pydicom.datadict import tag_for_keyword

    def tag_of(name: str) -> str:
        if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
            return name.upper()
        tag = tag_for_keyword(name)
        if tag is None:
            raise InvalidInput(
                f"{name[:64]!r} is not a DICOM attribute keyword or tag.",
                errors=[FieldProblem(name[:64], "not a DICOM attribute")],
            )
        return f"{tag:08X}"

    params = request.query_params
    filters: dict[str, str] = {}
    for name in params:
        if name in _PAGING:
            continue
        filters[tag_of(name)] = params.get(name) or ""
    include: set[str] = set()
    include_all = False
    for value in params.getall("includefield", []):
        for name in value.split(","):
            if name.strip() == "all":
                include_all = True
            elif name.strip():
                include.add(tag_of(name.strip()))

    def number(name: str, default: int, high: int) -> int:
        raw = params.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) > high:
            raise InvalidInput(
                f"{name} is a whole number from 0 to {high}.",
                errors=[FieldProblem(name, f"0 to {high}")],
            )
        return int(raw)

    return QidoQuery(
        filters=filters,
        include=frozenset(include),
        include_all=include_all,
        limit=number("limit", 100, MAX_QIDO_LIMIT),
        offset=number("offset", 0, 10**9),
    )


# The JSONB codec reads numbers as Decimal (FHIR keeps its digits): DICOM JSON
# wants them as JSON numbers again.
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _json(items: Any) -> Response[Any]:
    return Response(
        _ENCODER.encode(items), media_type=DICOM_JSON, headers={"Cache-Control": "no-store"}
    )


_COMMON = {
    "tags": ["dicomweb"],
    "raises": [NotAuthorizedException, NotFoundException, ValidationException],
    "security": [{"bearer": []}],
    "dependencies": {"caller": Provide(provide_dicomweb_caller)},
}
_QIDO_DESCRIPTION = (
    "Attribute filters by keyword or tag (e.g. `StudyDate=20200101-20201231`, "
    "`ModalitiesInStudy=CT`, `00100020=X*`), `includefield` (repeatable, comma-separated, "
    "or `all`), `limit` (at most 1000), `offset`. Without a study in the path, every "
    "study the caller may see is searched (a viewer token's one study)."
)
_QIDO = {**_COMMON, "description": _QIDO_DESCRIPTION, "media_type": DICOM_JSON}


@get(
    _paths("/studies"),
    operation_id=_operation("qidoStudies"),
    summary="QIDO-RS: search studies",
    **_QIDO,
)
async def qido_studies(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
) -> Response[Any]:
    return _json(await dicomweb.search_studies(caller, _query(request), context=context))


@get(
    _paths("/series", "/studies/{study:str}/series"),
    operation_id=_operation({"": "qidoAllSeries", "study": "qidoSeries"}),
    summary="QIDO-RS: search series (all, or a study's)",
    **_QIDO,
)
async def qido_series(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: SomeStudyUid = None,
) -> Response[Any]:
    return _json(await dicomweb.search_series(caller, study, _query(request), context=context))


@get(
    _paths(
        "/instances",
        "/studies/{study:str}/instances",
        "/studies/{study:str}/series/{series:str}/instances",
    ),
    operation_id=_operation(
        {"": "qidoAllInstances", "study": "qidoStudyInstances", "series": "qidoSeriesInstances"}
    ),
    summary="QIDO-RS: search instances (all, a study's or a series')",
    **_QIDO,
)
async def qido_instances(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: SomeStudyUid = None,
    series: SomeSeriesUid = None,
) -> Response[Any]:
    found = await dicomweb.search_instances(caller, study, series, _query(request), context=context)
    return _json(found)


# --- WADO-RS ---------------------------------------------------------------------------

_STUDY, _SERIES, _INSTANCE = (
    "/studies/{study:str}",
    "/studies/{study:str}/series/{series:str}",
    "/studies/{study:str}/series/{series:str}/instances/{instance:str}",
)


async def _multipart(
    dicomweb: DicomWeb, instances: list[Any], boundary: str
) -> AsyncIterator[bytes]:
    for instance in instances:
        yield (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n"
            f"Content-Length: {instance.size}\r\n\r\n"
        ).encode()
        async for chunk in dicomweb.content(instance):
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


@get(
    _paths(_STUDY, _SERIES, _INSTANCE),
    operation_id=_operation(
        {"study": "wadoStudy", "series": "wadoSeries", "instance": "wadoInstance"}
    ),
    summary="WADO-RS: retrieve instances (a study's, a series' or one)",
    description='Instances as `multipart/related; type="application/dicom"`, '
    "each part the file exactly as uploaded.",
    **_COMMON,
)
async def wado_retrieve(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SomeSeriesUid = None,
    instance: SomeInstanceUid = None,
) -> Stream:
    instances = await dicomweb.instances(caller, study, series, instance, context=context)
    boundary = secrets.token_hex(16)
    return Stream(
        _multipart(dicomweb, instances, boundary),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        headers={"Cache-Control": "no-store"},
    )


@get(
    _paths(f"{_STUDY}/metadata", f"{_SERIES}/metadata", f"{_INSTANCE}/metadata"),
    operation_id=_operation(
        {
            "study": "wadoStudyMetadata",
            "series": "wadoSeriesMetadata",
            "instance": "wadoInstanceMetadata",
        }
    ),
    summary="WADO-RS: metadata (a study's, a series' or an instance's)",
    description="DICOM JSON of each instance's header; bulk data (pixel data) as a BulkDataURI.",
    **_COMMON,
)
async def wado_metadata(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SomeSeriesUid = None,
    instance: SomeInstanceUid = None,
) -> Response[Any]:
    found = await dicomweb.instances(
        caller, study, series, instance, context=context, with_metadata=True
    )
    return _json([i.metadata for i in found])


def _image_type(request: Request[Any, Any, Any]) -> str:
    wanted = (request.query_params.get("accept") or request.headers.get("accept") or "").lower()
    if "image/jpeg" in wanted and "image/png" not in wanted:
        return "image/jpeg"
    return "image/png"


_RENDERED = {
    **_COMMON,
    "raises": [*_COMMON["raises"], UnrenderableImage],
}


@get(
    _paths(f"{_INSTANCE}/rendered", f"{_INSTANCE}/frames/{{frame:int}}/rendered"),
    operation_id=_operation({"instance": "wadoInstanceRendered", "frame": "wadoFrameRendered"}),
    summary="WADO-RS: a frame, rendered (the instance's first, or the one named)",
    description="The frame windowed with the file's own centre and "
    "width, as `image/png` (default) or `image/jpeg` (by `Accept` or `?accept=`).",
    **_RENDERED,
)
async def wado_rendered(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
    frame: Frame = 1,
) -> Response[bytes]:
    image = await dicomweb.render(
        caller, study, series, instance, frame, _image_type(request), context=context
    )
    return Response(
        image.data, media_type=image.media_type, headers={"Cache-Control": "private, max-age=300"}
    )


def _multipart_body(parts: list[bytes], part_type: str) -> Response[bytes]:
    boundary = secrets.token_hex(16)
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
        for part in parts
    )
    kind = part_type.split(";")[0]
    return Response(
        body + f"--{boundary}--\r\n".encode(),
        media_type=f'multipart/related; type="{kind}"; boundary={boundary}',
        headers={"Cache-Control": "no-store"},
    )


def _frame_types(request: Request[Any, Any, Any]) -> frozenset[str] | None:
    """PS3.18 8.7.3.5.3: the media types the client takes for a frame (the
    `type` of each `multipart/related` range), or None for anything (no Accept,
    a wildcard, or `transfer-syntax=*`)."""
    accept = (request.headers.get("accept") or "").strip()
    types: set[str] = set()
    for media_range in accept.lower().split(","):
        kind, *params = [p.strip() for p in media_range.split(";")]
        named = {k.strip(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in params)}
        part = named.get("type", "") if kind == "multipart/related" else kind
        if not part or "*" in part or named.get("transfer-syntax") == "*":
            return None
        types.add(part)
    return frozenset(types) if accept else None


@get(
    _paths(f"{_INSTANCE}/frames/{{frames:str}}"),
    operation_id=_operation("wadoFrames"),
    summary="WADO-RS: frames as bulk data",
    description='`multipart/related`, one part per frame: `type="application/octet-stream"` '
    "for native pixel data; compressed frames as stored with their own media type "
    "(`image/jpeg`, `image/jls`, `image/jp2`, `image/dicom-rle`, with `transfer-syntax`), "
    "or decoded to native bytes when the client accepts `application/octet-stream` and "
    "not the stored type; 406 when it accepts neither.",
    **{**_RENDERED, "raises": [*_RENDERED["raises"], UnacceptableFrames]},
)
async def wado_frames(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
    frames: FrameList,
) -> Response[bytes]:
    numbers = [int(n) for n in frames.split(",")]
    media_type, parts = await dicomweb.frames(
        caller,
        study,
        series,
        instance,
        numbers,
        accept=_frame_types(request),
        context=context,
    )
    return _multipart_body(parts, media_type)


@get(
    _paths(f"{_SERIES}/thumbnail"),
    operation_id=_operation("wadoSeriesThumbnail"),
    summary="WADO-RS: the series' preview (PNG)",
    **_COMMON,
)
async def wado_series_thumbnail(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
) -> Response[bytes]:
    data = await dicomweb.thumbnail(caller, study, series, context=context)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@get(
    _paths(f"{_INSTANCE}/bulkdata/{{tag:str}}"),
    operation_id=_operation("wadoBulkData"),
    summary="WADO-RS: one element's bytes (a BulkDataURI of the metadata)",
    description='`multipart/related; type="application/octet-stream"` with one part: the '
    "element's value as stored (pixel data as encoded in the file's transfer syntax).",
    **_COMMON,
)
async def wado_bulk_data(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
    tag: Annotated[
        str, Parameter(description="the element's tag, 8 hex digits", pattern=r"^[0-9A-Fa-f]{8}$")
    ],
) -> Response[bytes]:
    value = await dicomweb.bulk_data(caller, study, series, instance, int(tag, 16), context=context)
    return _multipart_body([value], "application/octet-stream")


# --- a share's viewer link ---------------------------------------------------------------


class ShareSessionIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    link: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    # The same rule as the manifest's recipient: the name the doctor gave.
    recipient: Annotated[
        str, msgspec.Meta(min_length=1, max_length=MAX_RECIPIENT_LENGTH, pattern=RECIPIENT_PATTERN)
    ]


class ShareSessionOut(msgspec.Struct, rename="camel"):
    study_uid: str
    token: str
    dicomweb_url: str
    expires_at: str


@post(
    "/v1/dicomweb/share-sessions",
    operation_id="openSharedStudyViewer",
    summary="Open a share's viewer link: a short-lived DICOMweb session for its recipient",
    description="No authentication: the viewer link a shared bundle carries (its `share=` "
    "token) is the authority, checked against the share on every request, with the "
    "recipient's name for the patient's access history. 401 for a damaged link or one "
    "past the share's end; 404 once the share is revoked, expired or disabled.",
    tags=["dicomweb"],
    security=[],
    status_code=201,
    raises=[NotAuthorizedException, NotFoundException, ValidationException],
)
async def open_share_session(
    dicomweb: DicomWebDep, context: RequestContextDep, data: JSONBody[ShareSessionIn]
) -> Response[ShareSessionOut]:
    session = await dicomweb.open_share_link(data.link, data.recipient, context=context)
    body = ShareSessionOut(
        study_uid=session.study_uid,
        token=session.token,
        dicomweb_url=session.dicomweb_url,
        expires_at=session.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})


HANDLERS = [
    qido_studies,
    qido_series,
    qido_instances,
    wado_retrieve,
    wado_metadata,
    wado_rendered,
    wado_frames,
    wado_series_thumbnail,
    wado_bulk_data,
    open_share_session,
]
