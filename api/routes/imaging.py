"""Imaging studies with their viewer and DICOMweb links."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Response, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import PathParameter

from api.current_patient import AuditedReaderDep
from api.routes.records import RecordSourceOut
from domain.access import PatientActor
from domain.errors import NotFound
from domain.imaging.catalog import StudyListing
from domain.records.imaging import ImagingStudyView


class ImagingLinkOut(msgspec.Struct, rename="camel"):
    kind: str
    url: str
    name: str | None


class SeriesPreviewOut(msgspec.Struct, rename="camel"):
    series_uid: str
    modality: str | None
    body_part: str | None
    description: str | None
    instance_count: int
    preview_url: str | None
    width: int | None
    height: int | None


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
    series: list[SeriesPreviewOut] = msgspec.field(default_factory=list)
    patient_aliases: list[str] = msgspec.field(default_factory=list)


def study_out(view: ImagingStudyView, names: dict[UUID, str]) -> ImagingStudyOut:
    return ImagingStudyOut(
        record_id=view.record_id,
        study_uid=view.study_uid,
        date=view.started,
        modalities=list(view.modalities),
        body_sites=list(view.body_sites),
        description=view.description,
        series_count=view.series_count,
        instance_count=view.instance_count,
        source=RecordSourceOut.of(view.source, names),
        links=[ImagingLinkOut(kind=link.kind, url=link.url, name=link.name) for link in view.links],
    )


@get(
    "/v1/imaging",
    operation_id="listImagingStudies",
    summary="The patient's imaging studies: series with previews, DICOMweb and viewer links",
    description="Studies the patient stores (from uploaded DICOM files and CDs) carry their "
    "series with preview URLs and links that need no header (a study-scoped token valid for "
    "`PHR_IMAGING_TOKEN_TTL` seconds): phr's DICOMweb base, the built-in viewer and, when "
    "configured, an external viewer. Hospital studies carry the hospital's Endpoint links.",
    tags=["imaging"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def list_imaging(reader: AuditedReaderDep) -> list[ImagingStudyOut]:
    # The listing's audited statement checks the account too (the reader's token
    # check skips it).
    patient = reader.patient
    listings = await reader.imaging.list(
        PatientActor(patient.patient_id, session_id=patient.session_id),
        patient.patient_id,
        context=reader.context,
    )
    names = await reader.hospitals.names([listing.view.source.hospital_id for listing in listings])
    return [listing_out(listing, names) for listing in listings]


def listing_out(listing: StudyListing, names: dict[UUID, str]) -> ImagingStudyOut:
    out = study_out(listing.view, names)
    out.links = [ImagingLinkOut(kind=k.kind, url=k.url, name=k.name) for k in listing.links]
    out.patient_aliases = list(listing.patient_aliases)
    out.series = [
        SeriesPreviewOut(
            series_uid=s.series_uid,
            modality=s.modality,
            body_part=s.body_part,
            description=s.description,
            instance_count=s.instance_count,
            preview_url=s.preview_url,
            width=s.width,
            height=s.height,
        )
        for s in listing.series
    ]
    return out


_STATIC = Path(__file__).resolve().parent.parent / "static"
# The viewer runs only its own script and style, talks only to this origin, and
# cannot be framed: the token in its fragment is worth protecting.
VIEWER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_VIEWER_HEADERS = {
    "Content-Security-Policy": VIEWER_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_ASSETS = {
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}


@get(
    "/imaging/viewer",
    operation_id="imagingViewer",
    summary="The built-in imaging viewer (HTML; reads #study=…&token=… from its fragment)",
    tags=["imaging"],
    media_type="text/html; charset=utf-8",
)
async def imaging_viewer() -> Response[bytes]:
    data = (_STATIC / "viewer.html").read_bytes()
    return Response(data, media_type="text/html; charset=utf-8", headers=_VIEWER_HEADERS)


@get(
    "/imaging/{asset:str}",
    operation_id="imagingViewerAsset",
    summary="The viewer's script and style sheet",
    tags=["imaging"],
    raises=[NotFoundException],
)
async def imaging_viewer_asset(
    asset: Annotated[str, PathParameter(description="viewer.js or viewer.css")],
) -> Response[bytes]:
    if asset not in _ASSETS:
        raise NotFound("No such file.")
    return Response(
        (_STATIC / asset).read_bytes(), media_type=_ASSETS[asset], headers=_VIEWER_HEADERS
    )
