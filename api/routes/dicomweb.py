"""DICOMweb (PS3.18) over the patient's stored studies, under one prefix:
`/v1/dicomweb` with the patient's bearer token, or `/v1/dicomweb/t/{token}` with a
study-scoped viewer token for viewers that cannot send a header (the token is in
the path, which the access log never records: it logs the route template).

QIDO-RS: `/studies`, `/studies/{study}/series`, `/studies/{study}/instances`,
`/studies/{study}/series/{series}/instances`, with attribute filters by keyword or
tag, `includefield`, `limit` and `offset`. WADO-RS: instances as
`multipart/related; type="application/dicom"` (streamed from storage, one
instance in memory at most), `metadata` as DICOM JSON, `rendered` frames as PNG or
JPEG, and each series' `thumbnail` (its preview)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.params import Parameter
from litestar.response import Stream

from api.current_patient import provide_current_patient
from api.deps import AuthenticationDep, DicomWebDep, RequestContextDep
from domain.dicomweb import MAX_QIDO_LIMIT, DicomWeb, DicomWebCaller, QidoQuery
from domain.errors import FieldProblem, InvalidInput

DICOM_JSON = "application/dicom+json"
_UID = r"^[0-9]+(\.[0-9]+)*$"
_PAGING = {"limit", "offset", "includefield", "fuzzymatching"}

StudyUid = Annotated[str, Parameter(description="StudyInstanceUID", pattern=_UID, max_length=64)]
SeriesUid = Annotated[str, Parameter(description="SeriesInstanceUID", pattern=_UID, max_length=64)]
InstanceUid = Annotated[str, Parameter(description="SOPInstanceUID", pattern=_UID, max_length=64)]
Frame = Annotated[int, Parameter(description="frame number, from 1", ge=1, le=100_000)]


async def provide_dicomweb_caller(
    request: Request[Any, Any, Any], dicomweb: DicomWebDep, authentication: AuthenticationDep
) -> DicomWebCaller:
    token = request.path_params.get("token")
    if token:
        return dicomweb.viewer_caller(token)
    patient = await provide_current_patient(request, authentication)
    return dicomweb.patient_caller(patient.patient_id)


CallerDep = NamedDependency[DicomWebCaller]


class UnrenderableImage(ClientException):
    """Documents the 422 answer (pixel data that cannot be decoded) in OpenAPI."""

    status_code = 422


def _operation(name: str) -> Any:
    """One handler serves two paths (bearer and viewer token): one operation id each."""

    def create(handler: Any, method: Any, components: list[Any]) -> str:
        through_token = any(getattr(c, "name", None) == "token" for c in components)
        return f"{name}WithViewerToken" if through_token else name

    return create


def _paths(tail: str) -> list[str]:
    return [f"/v1/dicomweb{tail}", f"/v1/dicomweb/t/{{token:str}}{tail}"]


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
    "or `all`), `limit` (at most 1000), `offset`."
)


@get(
    _paths("/studies"),
    operation_id=_operation("qidoStudies"),
    summary="QIDO-RS: search studies",
    description=_QIDO_DESCRIPTION,
    media_type=DICOM_JSON,
    **_COMMON,
)
async def qido_studies(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
) -> Response[Any]:
    found = await dicomweb.search_studies(
        caller.actor,
        caller.patient_id,
        _query(request),
        base=caller.base,
        scope=caller.scope,
        context=context,
    )
    return _json(found)


@get(
    _paths("/studies/{study:str}/series"),
    operation_id=_operation("qidoSeries"),
    summary="QIDO-RS: search a study's series",
    description=_QIDO_DESCRIPTION,
    media_type=DICOM_JSON,
    **_COMMON,
)
async def qido_series(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
) -> Response[Any]:
    found = await dicomweb.search_series(
        caller.actor,
        caller.patient_id,
        study,
        _query(request),
        base=caller.base,
        scope=caller.scope,
        context=context,
    )
    return _json(found)


@get(
    _paths("/studies/{study:str}/instances"),
    operation_id=_operation("qidoStudyInstances"),
    summary="QIDO-RS: search a study's instances",
    description=_QIDO_DESCRIPTION,
    media_type=DICOM_JSON,
    **_COMMON,
)
async def qido_study_instances(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
) -> Response[Any]:
    found = await dicomweb.search_instances(
        caller.actor,
        caller.patient_id,
        study,
        None,
        _query(request),
        base=caller.base,
        scope=caller.scope,
        context=context,
    )
    return _json(found)


@get(
    _paths("/studies/{study:str}/series/{series:str}/instances"),
    operation_id=_operation("qidoSeriesInstances"),
    summary="QIDO-RS: search a series' instances",
    description=_QIDO_DESCRIPTION,
    media_type=DICOM_JSON,
    **_COMMON,
)
async def qido_series_instances(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
) -> Response[Any]:
    found = await dicomweb.search_instances(
        caller.actor,
        caller.patient_id,
        study,
        series,
        _query(request),
        base=caller.base,
        scope=caller.scope,
        context=context,
    )
    return _json(found)


# --- WADO-RS ---------------------------------------------------------------------------


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


async def _retrieve(
    dicomweb: DicomWeb,
    caller: DicomWebCaller,
    context: Any,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Stream:
    instances = await dicomweb.instances(
        caller.actor,
        caller.patient_id,
        study,
        series,
        instance,
        scope=caller.scope,
        context=context,
    )
    boundary = secrets.token_hex(16)
    return Stream(
        _multipart(dicomweb, instances, boundary),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        headers={"Cache-Control": "no-store"},
    )


_WADO = {
    **_COMMON,
    "description": 'Instances as `multipart/related; type="application/dicom"`, '
    "each part the file exactly as uploaded.",
}


@get(
    _paths("/studies/{study:str}"),
    operation_id=_operation("wadoStudy"),
    summary="WADO-RS: retrieve a study's instances",
    **_WADO,
)
async def wado_study(
    dicomweb: DicomWebDep, caller: CallerDep, context: RequestContextDep, study: StudyUid
) -> Stream:
    return await _retrieve(dicomweb, caller, context, study)


@get(
    _paths("/studies/{study:str}/series/{series:str}"),
    operation_id=_operation("wadoSeries"),
    summary="WADO-RS: retrieve a series' instances",
    **_WADO,
)
async def wado_series(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
) -> Stream:
    return await _retrieve(dicomweb, caller, context, study, series)


@get(
    _paths("/studies/{study:str}/series/{series:str}/instances/{instance:str}"),
    operation_id=_operation("wadoInstance"),
    summary="WADO-RS: retrieve one instance",
    **_WADO,
)
async def wado_instance(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
) -> Stream:
    return await _retrieve(dicomweb, caller, context, study, series, instance)


async def _metadata(
    dicomweb: DicomWeb,
    caller: DicomWebCaller,
    context: Any,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Response[Any]:
    found = await dicomweb.instances(
        caller.actor,
        caller.patient_id,
        study,
        series,
        instance,
        scope=caller.scope,
        context=context,
        with_metadata=True,
    )
    return _json([i.metadata for i in found])


_META = {
    **_COMMON,
    "description": "DICOM JSON of each instance's header; bulk data (pixel data) as a BulkDataURI.",
}


@get(
    _paths("/studies/{study:str}/metadata"),
    operation_id=_operation("wadoStudyMetadata"),
    summary="WADO-RS: a study's metadata",
    **_META,
)
async def wado_study_metadata(
    dicomweb: DicomWebDep, caller: CallerDep, context: RequestContextDep, study: StudyUid
) -> Response[Any]:
    return await _metadata(dicomweb, caller, context, study)


@get(
    _paths("/studies/{study:str}/series/{series:str}/metadata"),
    operation_id=_operation("wadoSeriesMetadata"),
    summary="WADO-RS: a series' metadata",
    **_META,
)
async def wado_series_metadata(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
) -> Response[Any]:
    return await _metadata(dicomweb, caller, context, study, series)


@get(
    _paths("/studies/{study:str}/series/{series:str}/instances/{instance:str}/metadata"),
    operation_id=_operation("wadoInstanceMetadata"),
    summary="WADO-RS: an instance's metadata",
    **_META,
)
async def wado_instance_metadata(
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
) -> Response[Any]:
    return await _metadata(dicomweb, caller, context, study, series, instance)


def _image_type(request: Request[Any, Any, Any]) -> str:
    wanted = (request.query_params.get("accept") or request.headers.get("accept") or "").lower()
    if "image/jpeg" in wanted and "image/png" not in wanted:
        return "image/jpeg"
    return "image/png"


async def _rendered(
    request: Request[Any, Any, Any],
    dicomweb: DicomWeb,
    caller: DicomWebCaller,
    context: Any,
    study: str,
    series: str,
    instance: str,
    frame: int,
) -> Response[bytes]:
    image = await dicomweb.render(
        caller.actor,
        caller.patient_id,
        study,
        series,
        instance,
        frame,
        _image_type(request),
        scope=caller.scope,
        context=context,
    )
    return Response(
        image.data, media_type=image.media_type, headers={"Cache-Control": "private, max-age=300"}
    )


_RENDERED = {
    **_COMMON,
    "description": "The frame windowed with the file's own centre and "
    "width, as `image/png` (default) or `image/jpeg` (by `Accept` or `?accept=`).",
}
_RENDERED["raises"] = [*_COMMON["raises"], UnrenderableImage]


@get(
    _paths("/studies/{study:str}/series/{series:str}/instances/{instance:str}/rendered"),
    operation_id=_operation("wadoInstanceRendered"),
    summary="WADO-RS: an instance's first frame, rendered",
    **_RENDERED,
)
async def wado_instance_rendered(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
) -> Response[bytes]:
    return await _rendered(request, dicomweb, caller, context, study, series, instance, 1)


@get(
    _paths(
        "/studies/{study:str}/series/{series:str}/instances/{instance:str}/frames/{frame:int}/rendered"
    ),
    operation_id=_operation("wadoFrameRendered"),
    summary="WADO-RS: one frame, rendered",
    **_RENDERED,
)
async def wado_frame_rendered(
    request: Request[Any, Any, Any],
    dicomweb: DicomWebDep,
    caller: CallerDep,
    context: RequestContextDep,
    study: StudyUid,
    series: SeriesUid,
    instance: InstanceUid,
    frame: Frame,
) -> Response[bytes]:
    return await _rendered(request, dicomweb, caller, context, study, series, instance, frame)


@get(
    _paths("/studies/{study:str}/series/{series:str}/thumbnail"),
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
    data = await dicomweb.thumbnail(
        caller.actor, caller.patient_id, study, series, scope=caller.scope, context=context
    )
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@get(
    _paths("/studies/{study:str}/series/{series:str}/instances/{instance:str}/bulkdata/{tag:str}"),
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
    boundary = secrets.token_hex(16)
    body = (
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + value
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Response(
        body,
        media_type=f'multipart/related; type="application/octet-stream"; boundary={boundary}',
        headers={"Cache-Control": "no-store"},
    )


HANDLERS = [
    qido_studies,
    qido_series,
    qido_study_instances,
    qido_series_instances,
    wado_study,
    wado_series,
    wado_instance,
    wado_study_metadata,
    wado_series_metadata,
    wado_instance_metadata,
    wado_instance_rendered,
    wado_frame_rendered,
    wado_series_thumbnail,
    wado_bulk_data,
]
