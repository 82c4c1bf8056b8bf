"""The patient's own files: a presigned upload, its completion into a record,
and a short-lived download link for records made from uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.params import Body, PathParameter
from litestar.response import Redirect

from api.current_patient import CurrentPatient
from api.deps import ImagingImportDep, PatientUploadsDep, RequestContextDep
from api.routes.records import RecordOut, fhir_response, record_out
from domain.access import PatientActor
from domain.imaging.store import ImportStatus
from domain.uploads.upload import ALLOWED_CONTENT_TYPES, DEFAULT_MAX_UPLOAD_BYTES


class UnprocessableUpload(ClientException):
    """Documents the 422 answers (type, size or content refused) in OpenAPI."""

    status_code = 422


class UploadConflict(ClientException):
    """Documents the 409 answers (not uploaded yet, expired) in OpenAPI."""

    status_code = 409


class UploadRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    filename: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=1024,
            description="The file's name; any path is dropped, and it is cut to 255 characters.",
        ),
    ]
    # The enum and the bounds are declared for the contract; the checks (422
    # naming the field) stay in the domain's upload rules.
    content_type: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=255,
            description="application/pdf, image/jpeg, image/png, application/dicom or "
            "application/zip (a whole CD).",
            extra_json_schema={
                "description": "application/pdf, image/jpeg, image/png, application/dicom or "
                "application/zip (a whole CD).",
                "extra": {"enum": list(ALLOWED_CONTENT_TYPES)},
            },
        ),
    ]
    size: Annotated[
        int,
        msgspec.Meta(
            description="Exact size in bytes (> 0, within the limit).",
            extra_json_schema={
                "description": "Exact size in bytes: at least 1, at most the service's upload "
                f"limit (PHR_UPLOAD_MAX_BYTES, by default {DEFAULT_MAX_UPLOAD_BYTES}).",
                "extra": {"minimum": 1, "maximum": DEFAULT_MAX_UPLOAD_BYTES},
            },
        ),
    ]


class UploadOut(msgspec.Struct, rename="camel"):
    id: UUID
    upload_url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: datetime
    filename: str


class UploadStatusOut(msgspec.Struct, rename="camel"):
    """How a DICOM upload or a CD (zip) import went."""

    id: UUID
    filename: str
    status: Literal["processing", "done", "failed"]
    instances: int
    duplicates: int
    ignored: int
    study_uids: list[str]
    reasons: list[str]
    updated_at: datetime


def status_out(status: ImportStatus) -> UploadStatusOut:
    return UploadStatusOut(
        id=status.upload_id,
        filename=status.filename,
        status=status.status,
        instances=status.instances,
        duplicates=status.duplicates,
        ignored=status.ignored,
        study_uids=list(status.study_uids),
        reasons=list(status.reasons),
        updated_at=status.updated_at,
    )


_UPLOAD_ID = Annotated[UUID, PathParameter(description="the upload's id")]


@post(
    "/v1/uploads",
    operation_id="createUpload",
    summary="Start an upload: a presigned PUT URL for one file",
    description="Send the file with `method` to `uploadUrl` with exactly `headers`, before "
    "`expiresAt` (at most 15 minutes), then call `POST /v1/uploads/{id}/complete`.",
    tags=["uploads"],
    status_code=201,
    raises=[NotAuthorizedException, ValidationException, UnprocessableUpload],
    security=[{"bearer": []}],
)
async def create_upload(
    patient_uploads: PatientUploadsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    data: Annotated[UploadRequest, Body(description="the file to upload: name, type, size")],
) -> UploadOut:
    started = await patient_uploads.start(
        PatientActor(patient.patient_id),
        patient.patient_id,
        filename=data.filename,
        content_type=data.content_type,
        size=data.size,
        context=context,
    )
    return UploadOut(
        id=started.upload.id,
        upload_url=started.request.url,
        method="PUT",
        headers=started.request.headers,
        expires_at=started.request.expires_at,
        filename=started.upload.filename,
    )


@post(
    "/v1/uploads/{upload_id:uuid}/complete",
    operation_id="completeUpload",
    summary="Finish an upload: check the file and register it as a record",
    description="Checks that the file arrived with the announced size and that its content "
    "is its declared type (a mismatching file is deleted), then adds a DocumentReference "
    "(PDF, photo) to the record, or adds a DICOM file to its study (201 with the study's "
    "ImagingStudy record; unreadable DICOM is 422 and deleted). A CD (`application/zip`) "
    "whose directory is acceptable answers 202 with its import status (`processing`); a "
    "hostile archive (bomb, nested archive, `../` or absolute names, links) is 422 and "
    "deleted. A repeat answers 200 with the same record, or with the import status.",
    tags=["uploads"],
    status_code=201,
    raises=[
        NotAuthorizedException,
        NotFoundException,
        ValidationException,
        UnprocessableUpload,
        UploadConflict,
    ],
    security=[{"bearer": []}],
)
async def complete_upload(
    patient_uploads: PatientUploadsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    upload_id: _UPLOAD_ID,
) -> Response[RecordOut | UploadStatusOut]:
    done = await patient_uploads.complete(
        PatientActor(patient.patient_id), patient.patient_id, upload_id, context=context
    )
    if done.record is None:
        return Response(status_out(done.archive), status_code=202 if done.created else 200)
    return fhir_response(record_out(done.record, [], {}), status_code=201 if done.created else 200)


@get(
    "/v1/uploads/{upload_id:uuid}",
    operation_id="getUploadStatus",
    summary="How a DICOM upload or CD import went: processing, done (with counts) or failed",
    tags=["uploads"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
)
async def get_upload_status(
    imaging_import: ImagingImportDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    upload_id: _UPLOAD_ID,
) -> UploadStatusOut:
    status = await imaging_import.status(
        PatientActor(patient.patient_id), patient.patient_id, upload_id, context=context
    )
    return status_out(status)


@get(
    "/v1/records/{record_id:uuid}/content",
    operation_id="getRecordContent",
    summary="Download the file behind a record made from an upload",
    description="Redirects (302) to a presigned download URL valid for at most 5 minutes, "
    "with the file's name as the download name. 404 for records without a file.",
    tags=["records"],
    status_code=302,
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
)
async def get_record_content(
    patient_uploads: PatientUploadsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    record_id: Annotated[UUID, PathParameter(description="the record's id")],
) -> Redirect:
    request = await patient_uploads.content(
        PatientActor(patient.patient_id), patient.patient_id, record_id, context=context
    )
    return Redirect(
        request.url,
        status_code=302,
        headers={
            # The URL is a credential for a few minutes: keep it out of caches
            # and out of the Referer of whatever opens next.
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )
