"""The FHIR resources an upload becomes: a DocumentReference for a document or
photo, an ImagingStudy (from the DICOM header) for DICOM."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.fhir.validation import validate_resource
from domain.records.record import IncomingRecord, incoming_record
from domain.records.self_reported import SELF_REPORTED_TAG
from domain.uploads.upload import DicomHeader, Upload, UploadKind

_DOCUMENT_TYPE_TEXT: dict[UploadKind, str] = {
    "document": "Uploaded document",
    "photo": "Photo",
}
_DICOM_UID_SYSTEM = "urn:dicom:uid"
_DICOM_CODES = "http://dicom.nema.org/resources/ontology/DCM"


def _instant(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _self_reported_meta() -> dict[str, Any]:
    return {"tag": [dict(SELF_REPORTED_TAG)]}


def document_reference(upload: Upload, *, content_url: str, now: datetime) -> dict[str, Any]:
    """The record for a finished PDF or photo upload."""
    return {
        "resourceType": "DocumentReference",
        "id": str(upload.id),
        "meta": _self_reported_meta(),
        "status": "current",
        "type": {"text": _DOCUMENT_TYPE_TEXT[upload.kind]},
        "date": _instant(now),
        "description": upload.filename,
        "content": [
            {
                "attachment": {
                    "contentType": upload.content_type,
                    "url": content_url,
                    "size": upload.size,
                    "title": upload.filename,
                    "creation": _instant(upload.created_at),
                }
            }
        ],
    }


def dicom_started(header: DicomHeader) -> str | None:
    """StudyDate (+ StudyTime) as a FHIR dateTime. FHIR forbids a time without a
    zone and DICOM times are the modality's local time, so the time is used only
    when the file states its offset (TimezoneOffsetFromUTC); else the date alone."""
    date = (header.study_date or "").strip()
    if len(date) != 8 or not date.isdigit():
        return None
    day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    time = (header.study_time or "").strip().split(".")[0]
    offset = (header.timezone_offset or "").strip()
    if (
        len(time) >= 4
        and time.isdigit()
        and len(offset) == 5
        and offset[0] in "+-"
        and offset[1:].isdigit()
    ):
        seconds = time[4:6] if len(time) >= 6 else "00"
        return f"{day}T{time[:2]}:{time[2:4]}:{seconds}{offset[:3]}:{offset[3:]}"
    return day


def incoming_upload(resource: dict[str, Any], record_id: UUID) -> IncomingRecord:
    return incoming_record(
        resource,
        validate_resource(resource),
        source_resource_id=resource["id"],
        is_supporting=False,
        record_id=record_id,
    )
