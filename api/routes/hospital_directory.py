"""GET /v1/hospitals: the directory the app's hospital picker searches."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.params import QueryParameter

from api.current_patient import CurrentPatient
from api.deps import HospitalDirectoryDep, RequestContextDep
from domain.access import PatientActor
from domain.errors import FieldProblem, InvalidInput
from domain.hospitals.directory import DirectoryCursor, DirectoryEntry


class HospitalOut(msgspec.Struct, rename="camel"):
    id: UUID
    name: str
    city: str | None
    linked: bool


class HospitalPage(msgspec.Struct, rename="camel"):
    items: list[HospitalOut]
    next_cursor: str | None


def encode_cursor(entry: DirectoryEntry) -> str:
    raw = msgspec.json.encode(DirectoryCursor(name=entry.name, id=entry.id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> DirectoryCursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=DirectoryCursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput(
            "The cursor is not one this service issued.",
            errors=[
                FieldProblem("cursor", "unrecognised cursor; use nextCursor from a previous page")
            ],
        ) from None


@get(
    "/v1/hospitals",
    operation_id="listHospitals",
    summary="The hospitals registered with phr, for picking one to link",
    description="Ordered by name and keyset-paginated: pass `nextCursor` back as `cursor`. "
    "`q` finds hospitals whose name (Chinese or English) or city contains it. "
    "`linked` says whether the caller has a live link to the hospital.",
    tags=["links"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
)
async def list_hospitals(
    hospital_directory: HospitalDirectoryDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    q: Annotated[
        str | None,
        QueryParameter(description="text to find in the name or city", max_length=100),
    ] = None,
    cursor: Annotated[
        str | None, QueryParameter(description="nextCursor from the previous page", max_length=600)
    ] = None,
    limit: Annotated[int, QueryParameter(description="page size", ge=1, le=100)] = 50,
) -> HospitalPage:
    entries = await hospital_directory.search(
        PatientActor(patient.patient_id),
        text=q,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit,
        context=context,
    )
    page = entries[:limit]
    return HospitalPage(
        items=[HospitalOut(id=e.id, name=e.name, city=e.city, linked=e.linked) for e in page],
        next_cursor=encode_cursor(page[-1]) if len(entries) > limit else None,
    )
