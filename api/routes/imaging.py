"""Imaging studies with their viewer and DICOMweb links."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException

from api.current_patient import CurrentPatient
from api.deps import PatientRecordsDep, RequestContextDep
from api.routes.records import RecordSourceOut
from domain.access import PatientActor
from domain.records.imaging import ImagingStudyView


class ImagingLinkOut(msgspec.Struct, rename="camel"):
    kind: str
    url: str
    name: str | None


class ImagingStudyOut(msgspec.Struct, rename="camel"):
    record_id: UUID
    study_uid: str | None
    date: datetime | None
    modalities: list[str]
    body_sites: list[str]
    description: str | None
    series_count: int | None
    instance_count: int | None
    source: RecordSourceOut
    links: list[ImagingLinkOut]


def study_out(view: ImagingStudyView) -> ImagingStudyOut:
    return ImagingStudyOut(
        record_id=view.record_id,
        study_uid=view.study_uid,
        date=view.started,
        modalities=list(view.modalities),
        body_sites=list(view.body_sites),
        description=view.description,
        series_count=view.series_count,
        instance_count=view.instance_count,
        source=RecordSourceOut(kind=view.source.kind, hospital_id=view.source.hospital_id),
        links=[ImagingLinkOut(kind=link.kind, url=link.url, name=link.name) for link in view.links],
    )


@get(
    "/v1/imaging",
    operation_id="listImagingStudies",
    summary="The patient's imaging studies with viewer / DICOMweb links and uploaded files",
    tags=["imaging"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def list_imaging(
    patient_records: PatientRecordsDep, patient: CurrentPatient, context: RequestContextDep
) -> list[ImagingStudyOut]:
    views = await patient_records.imaging(
        PatientActor(patient.patient_id),
        patient.patient_id,
        context=context,
    )
    return [study_out(view) for view in views]
