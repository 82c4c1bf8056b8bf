"""The patient's own files (PDFs, photos, DICOM from a CD) as records.

An upload goes in two steps. `start` checks what the client announces (type on
the allowlist, size within the limit, a harmless file name), remembers it as a
pending upload and hands out a presigned PUT URL: the bytes go straight to
object storage, never through the API. `complete` then checks what actually
arrived (the object exists, has the announced size, and its first bytes are
what its type says) and registers it as a record: a DocumentReference for a
document or photo, an ImagingStudy (read from the DICOM header) for DICOM.

Keys are `patients/<patient id>/uploads/<upload id>`, so erasing an account
removes every file with one `delete_prefix("patients/<patient id>/")`.

Pending uploads that are never completed: past `expires_at + COMPLETION_GRACE`
they can no longer be completed (the store ignores them), and
`PatientUploads.purge_expired` deletes their objects and rows."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain.blobs import MAX_UPLOAD_BYTES, PresignedRequest, patient_files_prefix
from domain.errors import FieldProblem, InvalidInput, UnsupportedUploadType, UploadTooLarge
from domain.records.record import StoredRecord

UploadKind = Literal["document", "photo", "dicom", "archive"]
UploadStatus = Literal["pending", "completed"]

# What a patient may upload, and what each becomes.
ALLOWED_CONTENT_TYPES: dict[str, UploadKind] = {
    "application/pdf": "document",
    "image/jpeg": "photo",
    "image/png": "photo",
    "application/dicom": "dicom",
    # A whole CD: unpacked and imported by a background job.
    "application/zip": "archive",
}
# The largest patient upload unless PHR_UPLOAD_MAX_BYTES says otherwise
# (at most domain.blobs.MAX_UPLOAD_BYTES).
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
# A presigned PUT is a bearer credential: 15 minutes is the blob layer's cap
# and enough for 100 MiB on a slow mobile link.
UPLOAD_URL_LIFETIME = timedelta(minutes=15)
DOWNLOAD_URL_LIFETIME = timedelta(minutes=5)
# S3 checks a presigned URL when the request starts, so a slow upload begun just
# before expiry may finish after it: `complete` is accepted a while longer.
COMPLETION_GRACE = timedelta(minutes=30)
# Enough bytes to tell every allowed type apart (DICOM's "DICM" sits at 128).
SNIFF_BYTES = 132
MAX_FILENAME_LENGTH = 255

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- rules (pure) --------------------------------------------------------------------


def sniff(prefix: bytes) -> str | None:
    """The allowed content type these first bytes are, or None."""
    if prefix.startswith(b"%PDF-"):
        return "application/pdf"
    if prefix.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if prefix.startswith(_PNG_SIGNATURE):
        return "image/png"
    if len(prefix) >= 132 and prefix[128:132] == b"DICM":
        return "application/dicom"
    if prefix.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    return None


def sanitize_filename(raw: str) -> str:
    """The name a file is shown and downloaded under: the last path part of what
    the client sent (a browser on Windows may send C:\\...\\scan.pdf), without
    control characters or quotes, at most 255 characters (the extension kept).
    InvalidInput if nothing usable is left."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch)[0] != "C" and ch not in '"' and ch not in "\u2028\u2029"
    )
    name = name.strip().lstrip(".").strip()
    if not name:
        raise InvalidInput(
            "The file name has no usable characters.",
            errors=[FieldProblem("filename", "a file name without path, e.g. scan.pdf")],
        )
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def upload_key(patient_id: UUID, upload_id: UUID) -> str:
    return f"{patient_files_prefix(patient_id)}uploads/{upload_id}"


def completed_key(patient_id: UUID, upload_id: UUID) -> str:
    """Where a completed upload's object lives: no upload URL is ever signed
    for it, so the file that was checked is the file that is kept."""
    return f"{patient_files_prefix(patient_id)}files/{upload_id}"


class UploadRules(msgspec.Struct, frozen=True):
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        if not 0 < self.max_bytes <= MAX_UPLOAD_BYTES:
            raise ValueError(f"the upload limit must be 1 to {MAX_UPLOAD_BYTES} bytes")

    def check(self, filename: str, content_type: str, size: int) -> tuple[str, UploadKind]:
        """(sanitised file name, kind), or the InvalidInput that names the problem."""
        kind = ALLOWED_CONTENT_TYPES.get(content_type)
        if kind is None:
            raise UnsupportedUploadType(
                f"{content_type[:100]!r} cannot be uploaded; allowed: "
                + ", ".join(ALLOWED_CONTENT_TYPES),
                errors=[FieldProblem("contentType", "one of " + ", ".join(ALLOWED_CONTENT_TYPES))],
            )
        if size <= 0:
            raise UploadTooLarge(
                "An upload has at least one byte.",
                errors=[FieldProblem("size", "must be greater than 0")],
            )
        if size > self.max_bytes:
            raise UploadTooLarge(
                f"An upload has at most {self.max_bytes} bytes.",
                errors=[FieldProblem("size", f"must be at most {self.max_bytes}")],
            )
        return sanitize_filename(filename), kind


def completion_deadline(expires_at: datetime) -> datetime:
    return expires_at + COMPLETION_GRACE


# --- shapes and ports ------------------------------------------------------------------


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    status: UploadStatus
    key: str
    filename: str
    content_type: str
    size: int
    record_id: UUID | None
    created_at: datetime
    expires_at: datetime  # of the upload URL

    @property
    def kind(self) -> UploadKind:
        return ALLOWED_CONTENT_TYPES[self.content_type]


class StartedUpload(msgspec.Struct, frozen=True):
    upload: Upload
    request: PresignedRequest


class CompletedUpload(msgspec.Struct, frozen=True):
    record: StoredRecord | None
    created: bool  # False when the upload had been completed before
    # DICOM goes to the imaging import: its status, for a CD (zip) or a repeat.
    archive: Any = None


class DicomHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The DICOM attributes an ImagingStudy needs, as text straight from the file."""

    study_uid: str
    series_uid: str
    instance_uid: str | None = None
    sop_class_uid: str | None = None
    modality: str | None = None
    study_date: str | None = None  # DA: YYYYMMDD
    study_time: str | None = None  # TM: HHMMSS.FFFFFF, any tail may be missing
    timezone_offset: str | None = None  # +HHMM / -HHMM
    study_description: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    instance_number: int | None = None
    body_part: str | None = None
