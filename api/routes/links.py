"""The patient's links to hospitals: a one-time code to show at the hospital
(consenting to its pushes), the list, the code as a QR image, revocation."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import qrcode
from litestar import Request, Response, delete, get, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.params import Body, Parameter
from qrcode.image.pure import PyPNGImage

from api.current_patient import CurrentPatient
from api.deps import ClockDep, HospitalDirectoryDep, PatientLinksDep, RequestContextDep
from domain.access import PatientActor
from domain.hospitals.link_codes import format_link_code
from domain.hospitals.links import Link


class LinkCreate(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    hospital_id: UUID


class LinkOut(msgspec.Struct, rename="camel", omit_defaults=True):
    id: UUID
    hospital_id: UUID
    hospital_name: str
    status: str
    expires_at: datetime
    created_at: datetime
    linked_at: datetime | None = None
    patient_ref: str | None = None


class LinkCreated(msgspec.Struct, rename="camel"):
    id: UUID
    hospital_id: UUID
    hospital_name: str
    code: str
    expires_at: datetime
    status: str


def link_out(link: Link, now: datetime, names: dict[UUID, str]) -> LinkOut:
    return LinkOut(
        id=link.id,
        hospital_id=link.hospital_id,
        hospital_name=names.get(link.hospital_id, ""),
        status=link.status_at(now),
        expires_at=link.expires_at,
        created_at=link.created_at,
        linked_at=link.linked_at,
        patient_ref=link.patient_ref,
    )


_LINK_ID = Parameter(description="the link's id")
# The same PNG bytes either way: some client generators read only octet-stream as bytes.
QR_MEDIA_TYPES = ["image/png", "application/octet-stream"]


@post(
    "/v1/links",
    operation_id="createLink",
    summary="A one-time code that links a hospital; records the patient's consent to its pushes",
    description="The code (XXXX-XXXX, Crockford base32) is valid for 24 hours and for one use. "
    "The patient shows it at the hospital, whose system confirms it with `patient.linked`.",
    tags=["links"],
    raises=[NotAuthorizedException, NotFoundException, ValidationException],
    security=[{"bearer": []}],
    status_code=201,
)
async def create_link(
    clock: ClockDep,
    patient_links: PatientLinksDep,
    hospital_directory: HospitalDirectoryDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    data: Annotated[LinkCreate, Body(description="the hospital to link")],
) -> LinkCreated:
    link, code = await patient_links.create(
        PatientActor(patient.patient_id), data.hospital_id, context=context
    )
    names = await hospital_directory.names([link.hospital_id])
    return LinkCreated(
        id=link.id,
        hospital_id=link.hospital_id,
        hospital_name=names.get(link.hospital_id, ""),
        code=format_link_code(code),
        expires_at=link.expires_at,
        status=link.status_at(clock.now()),
    )


@get(
    "/v1/links",
    operation_id="listLinks",
    summary="The patient's hospital links: pending, linked, expired or revoked",
    tags=["links"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def list_links(
    clock: ClockDep,
    patient_links: PatientLinksDep,
    hospital_directory: HospitalDirectoryDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> list[LinkOut]:
    links = await patient_links.list(PatientActor(patient.patient_id), context=context)
    now = clock.now()
    names = await hospital_directory.names([link.hospital_id for link in links])
    return [link_out(link, now, names) for link in links]


@get(
    "/v1/links/{link_id:uuid}",
    operation_id="getLink",
    summary="One hospital link",
    tags=["links"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
)
async def get_link(
    clock: ClockDep,
    patient_links: PatientLinksDep,
    hospital_directory: HospitalDirectoryDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    link_id: Annotated[UUID, _LINK_ID],
) -> LinkOut:
    link = await patient_links.get(PatientActor(patient.patient_id), link_id, context=context)
    names = await hospital_directory.names([link.hospital_id])
    return link_out(link, clock.now(), names)


def render_code_png(text: str) -> bytes:
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=8,
        border=4,
        image_factory=PyPNGImage,
    )
    qr.add_data(text)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


@get(
    "/v1/links/{link_id:uuid}/qr",
    operation_id="getLinkQr",
    summary="The pending link's code as a QR image (PNG), for a hospital kiosk to scan",
    tags=["links"],
    raises=[NotAuthorizedException, NotFoundException, ClientException],
    security=[{"bearer": []}],
    media_type="image/png",
)
async def get_link_qr(
    request: Request[Any, Any, Any],
    patient_links: PatientLinksDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    link_id: Annotated[UUID, _LINK_ID],
) -> Response[bytes]:
    code = await patient_links.code(PatientActor(patient.patient_id), link_id, context=context)
    # Pure-Python QR rendering takes milliseconds of CPU: keep it off the event loop.
    png = await asyncio.to_thread(render_code_png, format_link_code(code))
    media_type = request.accept.best_match(QR_MEDIA_TYPES, default=QR_MEDIA_TYPES[0])
    return Response(png, media_type=media_type, headers={"Cache-Control": "no-store"})


@delete(
    "/v1/links/{link_id:uuid}",
    operation_id="revokeLink",
    summary="Revoke a hospital link: its later pushes are refused; records received stay",
    tags=["links"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
    status_code=204,
)
async def revoke_link(
    patient_links: PatientLinksDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    link_id: Annotated[UUID, _LINK_ID],
) -> None:
    await patient_links.revoke(PatientActor(patient.patient_id), link_id, context=context)
