"""GET /v1/hospitals: the directory the app's hospital picker searches."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.params import QueryParameter

from api.current_patient import CurrentPatient
from api.deps import HospitalDirectoryDep, RequestContextDep
from api.page_cursors import decode_cursor, encode_cursor
from domain.access import PatientActor
from domain.hospitals.directory import DirectoryCursor


class HospitalOut(msgspec.Struct, rename="camel"):
    id: UUID
    name: str
    city: str | None
    linked: bool


class HospitalPage(msgspec.Struct, rename="camel"):
    items: list[HospitalOut]
    next_cursor: str | None


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
        after=decode_cursor(cursor, DirectoryCursor) if cursor else None,
        limit=limit,
        context=context,
    )
    page = entries[:limit]
    return HospitalPage(
        items=[HospitalOut(id=e.id, name=e.name, city=e.city, linked=e.linked) for e in page],
        next_cursor=(
            encode_cursor(DirectoryCursor(name=page[-1].name, id=page[-1].id))
            if len(entries) > limit
            else None
        ),
    )
