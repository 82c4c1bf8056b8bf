"""The patient's timeline, one record, self-reported records, and the export."""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from api.current_patient import AuditedReaderDep, CurrentPatient
from api.deps import ClockDep, PatientRecordsDep, RequestContextDep
from api.page_cursors import decode_cursor, encode_cursor
from domain.access import PatientActor
from domain.errors import FieldProblem, InvalidInput
from domain.fhir import json_codec
from domain.records.record import (
    RecordSummary,
    RecordVersion,
    StoredRecord,
    TimelineCursor,
    TimelineQuery,
)
from domain.records.sources import RecordSource

FHIR_JSON = "application/fhir+json"


class RecordSourceOut(msgspec.Struct, rename="camel"):
    kind: str
    hospital_id: UUID | None = None
    # So the app can say "from 华西医院" without a second call.
    hospital_name: str | None = None

    @classmethod
    def of(cls, source: RecordSource, names: dict[UUID, str]) -> RecordSourceOut:
        return cls(
            kind=source.kind,
            hospital_id=source.hospital_id,
            hospital_name=names.get(source.hospital_id) if source.hospital_id else None,
        )


class CodeOut(msgspec.Struct, rename="camel"):
    system: str | None
    code: str | None
    display: str | None


class RecordSummaryOut(msgspec.Struct, rename="camel"):
    id: UUID
    type: str
    category: str | None
    date: datetime | None
    display: str | None
    value: str | None
    unit: str | None
    status: str | None
    source: RecordSourceOut
    self_reported: bool


class RecordPage(msgspec.Struct, rename="camel"):
    items: list[RecordSummaryOut]
    next_cursor: str | None


class RecordVersionOut(msgspec.Struct, rename="camel"):
    version: int
    received_at: datetime
    source_version: str | None
    source_updated_at: datetime | None
    resource: dict[str, Any]


class RecordOut(msgspec.Struct, rename="camel"):
    id: UUID
    type: str
    category: str | None
    code: CodeOut
    date: datetime | None
    display: str | None
    value: str | None
    unit: str | None
    status: str | None
    source: RecordSourceOut
    source_resource_id: str
    self_reported: bool
    version: int
    received_at: datetime
    updated_at: datetime
    resource: dict[str, Any]
    history: list[RecordVersionOut]


def summary_out(item: RecordSummary, names: dict[UUID, str]) -> RecordSummaryOut:
    return RecordSummaryOut(
        id=item.id,
        type=item.resource_type,
        category=item.category,
        date=item.effective_at,
        display=item.display,
        value=item.value,
        unit=item.unit,
        status=item.status,
        source=RecordSourceOut.of(item.source, names),
        self_reported=item.source.kind == "self",
    )


def record_out(
    record: StoredRecord, history: list[RecordVersion], names: dict[UUID, str]
) -> RecordOut:
    f = record.fields
    return RecordOut(
        id=record.id,
        type=f.resource_type,
        category=f.category,
        code=CodeOut(system=f.code_system, code=f.code, display=f.display),
        date=f.effective_at,
        display=f.display,
        value=f.value,
        unit=f.unit,
        status=f.status,
        source=RecordSourceOut.of(record.source, names),
        source_resource_id=record.source_resource_id,
        self_reported=record.source.kind == "self",
        version=record.version,
        received_at=record.received_at,
        updated_at=record.updated_at,
        resource=record.resource,
        history=[
            RecordVersionOut(
                version=v.version,
                received_at=v.received_at,
                source_version=v.source_version,
                source_updated_at=v.source_updated_at,
                resource=v.resource,
            )
            for v in history
        ],
    )


# Routes that read their body as FHIR JSON themselves (decimals kept exactly), so the
# framework cannot describe it: the OpenAPI document gets these request bodies.
RAW_REQUEST_BODIES: dict[str, dict[str, Any]] = {
    "createRecord": {
        "required": True,
        "description": "a FHIR R4 resource (JSON object), e.g. an Observation",
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["resourceType"]}}
        },
    }
}


def fhir_response(body: RecordOut, status_code: int = 200) -> Response[RecordOut]:
    """Encoded here, not by the framework: the resource's decimals go out as JSON
    numbers with every digit they came in with."""
    return Response(json_codec.encode(body), status_code=status_code, media_type="application/json")  # type: ignore[arg-type]


def parse_instant(name: str, value: str | None) -> datetime | None:
    """A FHIR-style date (2024, 2024-05, 2024-05-01) or an ISO instant; UTC if no zone."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name} is not a date.",
            errors=[
                FieldProblem(
                    name, "expected a date (YYYY, YYYY-MM, YYYY-MM-DD) or an ISO 8601 instant"
                )
            ],
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The same rule, for the contract: text without control characters.
_NO_CONTROL = "^[^\\x00-\\x1f\\x7f]*$"

_RAISES = [NotAuthorizedException, ValidationException]


@get(
    "/v1/records",
    operation_id="listRecords",
    summary="The patient's timeline, newest first",
    description="Keyset-paginated: pass `nextCursor` back as `cursor` for the next page.",
    tags=["records"],
    raises=_RAISES,
    security=[{"bearer": []}],
)
async def list_records(
    reader: AuditedReaderDep,
    types: Annotated[
        list[str] | None,
        QueryParameter(
            name="type",
            description="FHIR resource type(s), e.g. Observation",
            required=False,
            schema_extra={
                "oneOf": [
                    {
                        "type": "array",
                        "items": {"type": "string", "pattern": _RESOURCE_TYPE.pattern},
                    },
                    {"type": "null"},
                ]
            },
        ),
    ] = None,
    category: Annotated[
        str | None,
        QueryParameter(
            description="category code, e.g. laboratory",
            schema_extra={"oneOf": [{"type": "string", "pattern": _NO_CONTROL}, {"type": "null"}]},
        ),
    ] = None,
    hospital_id: Annotated[
        UUID | None,
        QueryParameter(name="hospitalId", description="only records from this hospital"),
    ] = None,
    since: Annotated[
        str | None, QueryParameter(description="on or after this date or instant")
    ] = None,
    until: Annotated[str | None, QueryParameter(description="before this date or instant")] = None,
    q: Annotated[
        str | None,
        QueryParameter(
            description="text to find in the record's display text",
            max_length=200,
            schema_extra={"oneOf": [{"type": "string", "pattern": _NO_CONTROL}, {"type": "null"}]},
        ),
    ] = None,
    cursor: Annotated[
        str | None, QueryParameter(description="nextCursor from the previous page", max_length=200)
    ] = None,
    limit: Annotated[int, QueryParameter(description="page size", ge=1, le=200)] = 50,
) -> RecordPage:
    for resource_type in types or ():
        if not _RESOURCE_TYPE.match(resource_type):
            raise InvalidInput(
                "type must be a FHIR resource type.",
                errors=[
                    FieldProblem("type", f"not a FHIR resource type name: {resource_type[:64]!r}")
                ],
            )
    for name, text in (("category", category), ("q", q)):
        if text is not None and _CONTROL.search(text):
            raise InvalidInput(
                f"{name} contains control characters.",
                errors=[FieldProblem(name, "control characters are not allowed")],
            )
    query = TimelineQuery(
        types=tuple(types or ()),
        category=category,
        hospital_id=hospital_id,
        since=parse_instant("since", since),
        until=parse_instant("until", until),
        text=q or None,
        after=decode_cursor(cursor, TimelineCursor) if cursor else None,
        limit=limit,
    )
    # The page's one statement checks the account too (the reader's token check skips it).
    patient, context = reader.patient, reader.context
    items = await reader.records.timeline(
        PatientActor(patient.patient_id, session_id=patient.session_id),
        patient.patient_id,
        query,
        context=context,
    )
    page = items[:limit]
    next_cursor = (
        encode_cursor(TimelineCursor(sort_at=page[-1].sort_at, id=page[-1].id))
        if len(items) > limit
        else None
    )
    names = await reader.hospitals.names([item.source.hospital_id for item in page])
    return RecordPage(items=[summary_out(item, names) for item in page], next_cursor=next_cursor)


@get(
    "/v1/records/{record_id:uuid}",
    operation_id="getRecord",
    summary="One record: its FHIR resource as received, its source and its history",
    tags=["records"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
)
async def get_record(
    reader: AuditedReaderDep,
    record_id: Annotated[UUID, PathParameter(description="the record's id")],
) -> Response[RecordOut]:
    # The read's one statement checks the account too (the reader's token check skips it).
    patient, context = reader.patient, reader.context
    record, history = await reader.records.read(
        PatientActor(patient.patient_id, session_id=patient.session_id),
        patient.patient_id,
        record_id,
        context=context,
    )
    names = await reader.hospitals.names([record.source.hospital_id])
    return fhir_response(record_out(record, history, names))


@post(
    "/v1/records",
    operation_id="createRecord",
    summary="Add a self-reported record (a FHIR resource, e.g. a home blood-pressure Observation)",
    tags=["records"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
    status_code=201,
)
async def create_record(
    request: Request[Any, Any, Any],
    patient_records: PatientRecordsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> Response[RecordOut]:
    """The body is a FHIR R4 resource (a JSON object); see RAW_REQUEST_BODIES."""
    data = await request.body()
    # Read as FHIR JSON ourselves: decimals keep their digits (1.50 stays 1.50).
    try:
        resource = json_codec.decode(data)
    except msgspec.DecodeError as exc:
        raise ClientException(f"malformed JSON: {exc}") from None
    if not isinstance(resource, dict):
        raise InvalidInput(
            "The body must be a FHIR resource (a JSON object).",
            errors=[FieldProblem("body", "expected a JSON object with a resourceType")],
        )
    record = await patient_records.add_self_reported(
        PatientActor(patient.patient_id), patient.patient_id, resource, context=context
    )
    return fhir_response(record_out(record, [], {}), status_code=201)


_EXPORT_CHUNK = 64 * 1024


@get(
    "/v1/export",
    operation_id="exportRecords",
    summary="Everything in the record as one FHIR Bundle (type collection), streamed",
    tags=["records"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
    media_type=FHIR_JSON,
)
async def export_records(
    clock: ClockDep,
    patient_records: PatientRecordsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> Stream:
    stack = AsyncExitStack()
    # The export's audit row is written here, before the first byte, in the
    # transaction the rows will be read from.
    rows = await stack.enter_async_context(
        patient_records.export(
            PatientActor(patient.patient_id), patient.patient_id, context=context
        )
    )
    timestamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    async def body() -> Any:
        try:
            buffer = bytearray(
                b'{"resourceType":"Bundle","type":"collection","timestamp":"'
                + timestamp.encode()
                + b'","entry":['
            )
            first = True
            async for record_id, resource in rows:
                if not first:
                    buffer += b","
                first = False
                buffer += b'{"fullUrl":"urn:uuid:' + str(record_id).encode() + b'","resource":'
                buffer += resource
                buffer += b"}"
                if len(buffer) >= _EXPORT_CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
            buffer += b"]}"
            yield bytes(buffer)
        finally:
            await stack.aclose()

    return Stream(
        body(),
        media_type=FHIR_JSON,
        headers={"Content-Disposition": 'attachment; filename="phr-export.json"'},
    )
