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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID, uuid4

import msgspec

from domain.access import (
    AccessRefused,
    Action,
    ActionNotAllowed,
    Actor,
    Permit,
    authorize,
)
from domain.audit import AuditLog, RequestContext
from domain.blobs import MAX_UPLOAD_BYTES, BlobStore, PresignedRequest
from domain.clock import Clock
from domain.consent import Consent
from domain.errors import (
    FieldProblem,
    InvalidInput,
    NotFound,
    UnsupportedUploadType,
    UploadContentMismatch,
    UploadExpired,
    UploadNotReceived,
    UploadSizeMismatch,
    UploadTooLarge,
)
from domain.fhir import validate_resource
from domain.patient_records import SELF_REPORTED_TAG
from domain.ports import UnitOfWork
from domain.records import SELF, IncomingRecord, RecordStore, StoredRecord, incoming_record

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
# The DICOM header (everything before the pixel data) is read from this many
# first bytes; real headers are a few KiB to a few hundred KiB.
DICOM_HEADER_BYTES = 4 * 1024 * 1024
MAX_FILENAME_LENGTH = 255

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DOCUMENT_TYPE_TEXT: dict[UploadKind, str] = {
    "document": "Uploaded document",
    "photo": "Photo",
}
_DICOM_UID_SYSTEM = "urn:dicom:uid"
_DICOM_CODES = "http://dicom.nema.org/resources/ontology/DCM"


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
    return f"patients/{patient_id}/uploads/{upload_id}"


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
    # A CD (zip) is imported in the background: its import status instead of a record.
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


class DicomReader(Protocol):
    async def read_header(self, data: bytes) -> DicomHeader:
        """The header of a DICOM Part 10 file (or its first bytes); UnreadableDicom
        if it is not one or lacks the study and series UIDs."""
        ...


class ImagingIntake(Protocol):
    """Where DICOM uploads go once their bytes are checked (domain.imaging_import)."""

    async def take_file(
        self, actor: Actor, patient_id: UUID, upload: Upload, *, context: RequestContext
    ) -> StoredRecord: ...

    async def take_archive(
        self, actor: Actor, patient_id: UUID, upload: Upload, *, context: RequestContext
    ) -> Any: ...

    async def status(
        self, actor: Actor, patient_id: UUID, upload_id: UUID, *, context: RequestContext
    ) -> Any: ...


class UploadStore(Protocol):
    async def add(self, permit: Permit, upload: Upload) -> None: ...

    async def get(self, permit: Permit, upload_id: UUID, *, lock: bool = False) -> Upload | None:
        """The permit's patient's upload; `lock` holds it for the unit of work."""
        ...

    async def mark_completed(
        self, permit: Permit, upload_id: UUID, record_id: UUID, at: datetime
    ) -> None: ...

    async def for_record(self, permit: Permit, record_id: UUID) -> tuple[Upload, str] | None:
        """The completed upload behind a record, with the record's resource type,
        if the record is within the permit's scope."""
        ...

    async def expired_pending(self, expired_before: datetime, limit: int) -> list[Upload]:
        """Pending uploads whose URL expired before `expired_before`, oldest first,
        across patients: the sweeper's one scan that is not per patient."""
        ...

    async def delete_pending(self, upload: Upload) -> bool:
        """Deletes the row if it is still pending; False if it is not."""
        ...


# --- FHIR ----------------------------------------------------------------------------


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


def imaging_study(
    upload: Upload, header: DicomHeader, *, content_url: str, now: datetime
) -> dict[str, Any]:
    """The record for a finished DICOM upload: one study, one series, one instance."""
    modality = {"system": _DICOM_CODES, "code": (header.modality or "OT").strip() or "OT"}
    series: dict[str, Any] = {
        "uid": header.series_uid,
        "modality": modality,
        "numberOfInstances": 1,
    }
    if header.series_number is not None:
        series["number"] = header.series_number
    if header.series_description:
        series["description"] = header.series_description
    if header.body_part:
        series["bodySite"] = {"display": header.body_part}
    started = dicom_started(header)
    if started:
        series["started"] = started
    if header.instance_uid and header.sop_class_uid:
        instance: dict[str, Any] = {
            "uid": header.instance_uid,
            "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{header.sop_class_uid}"},
            "title": upload.filename,
        }
        if header.instance_number is not None:
            instance["number"] = header.instance_number
        series["instance"] = [instance]
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": str(upload.id),
        "meta": _self_reported_meta(),
        "identifier": [{"system": _DICOM_UID_SYSTEM, "value": f"urn:oid:{header.study_uid}"}],
        "status": "available",
        # No Patient resource of our own to point at; the record is the patient's.
        "subject": {"type": "Patient", "display": "The patient (self-uploaded)"},
        "modality": [modality],
        "numberOfSeries": 1,
        "numberOfInstances": 1,
        "series": [series],
        # Where the file itself is (FHIR has no attachment on ImagingStudy).
        "extension": [
            {
                "url": "https://phr.example/fhir/StructureDefinition/uploaded-file",
                "valueAttachment": {
                    "contentType": upload.content_type,
                    "url": content_url,
                    "size": upload.size,
                    "title": upload.filename,
                    "creation": _instant(upload.created_at),
                },
            }
        ],
    }
    if started:
        study["started"] = started
    if header.study_description:
        study["description"] = header.study_description
    return study


def incoming_upload(resource: dict[str, Any], record_id: UUID) -> IncomingRecord:
    return incoming_record(
        resource,
        validate_resource(resource),
        source_resource_id=resource["id"],
        is_supporting=False,
        record_id=record_id,
    )


# --- use cases -----------------------------------------------------------------------


class PatientUploads:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        uploads: UploadStore,
        records: RecordStore,
        blobs: BlobStore,
        dicom: DicomReader,
        imaging: ImagingIntake,
        audit: AuditLog,
        clock: Clock,
        rules: UploadRules,
        content_url: Callable[[UUID], str],
    ):
        self._unit_of_work = unit_of_work
        self._uploads = uploads
        self._records = records
        self._blobs = blobs
        self._dicom = dicom
        self._imaging = imaging
        self._audit = audit
        self._clock = clock
        self._rules = rules
        self._content_url = content_url

    async def _authorize(
        self,
        uow: UnitOfWork,
        actor: Actor,
        action: Action,
        patient_id: UUID,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> Permit:
        try:
            return authorize(
                actor, action, patient_id, now=self._clock.now(), consent=consent, context=context
            )
        except (AccessRefused, ActionNotAllowed) as refused:
            await self._audit.append(refused.audit)
            await uow.commit()
            raise

    async def _refuse(
        self, uow: UnitOfWork, permit: Permit, reason: str, resource: str, item: UUID
    ) -> None:
        await self._audit.append(permit.refusal(reason, resource, str(item)))
        await uow.commit()

    async def start(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        filename: str,
        content_type: str,
        size: int,
        context: RequestContext,
    ) -> StartedUpload:
        name, _ = self._rules.check(filename, content_type, size)
        upload_id = uuid4()
        key = upload_key(patient_id, upload_id)
        request = await self._blobs.presign_put(
            key, content_type=content_type, size=size, expires_in=UPLOAD_URL_LIFETIME
        )
        upload = Upload(
            id=upload_id,
            patient_id=patient_id,
            status="pending",
            key=key,
            filename=name,
            content_type=content_type,
            size=size,
            record_id=None,
            created_at=self._clock.now(),
            expires_at=request.expires_at,
        )
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "upload.create", patient_id, context)
            await self._uploads.add(permit, upload)
            await self._audit.append(permit.event("Upload", str(upload_id)))
            await uow.commit()
        return StartedUpload(upload, request)

    async def complete(
        self, actor: Actor, patient_id: UUID, upload_id: UUID, *, context: RequestContext
    ) -> CompletedUpload:
        # Checks of the object run before the transaction: no row lock is held
        # while storage answers. The row is re-read under lock before writing.
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "record.create", patient_id, context)
            upload = await self._uploads.get(permit, upload_id)
            if upload is None:
                await uow.commit()
                return await self._taken(actor, patient_id, upload_id, context)
            if upload.status == "completed":
                return await self._completed(uow, permit, upload)
            if self._clock.now() > completion_deadline(upload.expires_at):
                await self._refuse(uow, permit, "upload-expired", "Upload", upload_id)
                raise UploadExpired("This upload has expired; start a new one.")

        header = await self._check_object(upload, patient_id, context)
        if upload.kind == "dicom":
            record = await self._imaging.take_file(actor, patient_id, upload, context=context)
            return CompletedUpload(record, created=True)
        if upload.kind == "archive":
            status = await self._imaging.take_archive(actor, patient_id, upload, context=context)
            return CompletedUpload(None, created=True, archive=status)

        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "record.create", patient_id, context)
            locked = await self._uploads.get(permit, upload_id, lock=True)
            if locked is None:  # erased meanwhile
                raise NotFound("No upload with this id.")
            if locked.status == "completed":
                return await self._completed(uow, permit, locked)
            if self._clock.now() > completion_deadline(locked.expires_at):
                await self._refuse(uow, permit, "upload-expired", "Upload", upload_id)
                raise UploadExpired("This upload has expired; start a new one.")
            record_id = uuid4()
            url = self._content_url(record_id)
            now = self._clock.now()
            resource = (
                imaging_study(upload, header, content_url=url, now=now)
                if header is not None
                else document_reference(upload, content_url=url, now=now)
            )
            incoming = incoming_upload(resource, record_id)
            await self._records.insert(permit, SELF, [incoming])
            await self._uploads.mark_completed(permit, upload_id, record_id, now)
            await self._audit.append(permit.event(incoming.resource_type, str(record_id)))
            record = await self._records.get(permit, record_id)
            await uow.commit()
        assert record is not None
        return CompletedUpload(record, created=True)

    async def _taken(
        self, actor: Actor, patient_id: UUID, upload_id: UUID, context: RequestContext
    ) -> CompletedUpload:
        """A DICOM file or CD whose upload was consumed by the imaging import: a
        repeat `complete` answers with what the import made of it."""
        status = await self._imaging.status(actor, patient_id, upload_id, context=context)
        return CompletedUpload(None, created=False, archive=status)

    async def _completed(self, uow: UnitOfWork, permit: Permit, upload: Upload) -> CompletedUpload:
        assert upload.record_id is not None
        record = await self._records.get(permit, upload.record_id)
        if record is None:
            raise NotFound("No upload with this id.")
        # The repeat is recorded as what it is: the patient was handed the record.
        await self._audit.append(permit.event(record.fields.resource_type, str(record.id)))
        await uow.commit()
        return CompletedUpload(record, created=False)

    async def _check_object(
        self, upload: Upload, patient_id: UUID, context: RequestContext
    ) -> DicomHeader | None:
        """Exists, has the announced size, and is what it claims to be. A file
        whose content is not its declared type is deleted. Returns the DICOM
        header for DICOM uploads."""
        info = await self._blobs.stat(upload.key)
        if info is None:
            raise UploadNotReceived("The file has not been uploaded yet.")
        if info.size != upload.size:
            raise UploadSizeMismatch(
                f"The stored file has {info.size} bytes; {upload.size} were announced.",
                errors=[FieldProblem("size", "differs from the uploaded file")],
            )
        try:
            prefix = await self._blobs.read_prefix(upload.key, SNIFF_BYTES)
        except NotFound:
            raise UploadNotReceived("The file has not been uploaded yet.") from None
        if sniff(prefix) != upload.content_type:
            await self._blobs.delete(upload.key)
            raise UploadContentMismatch(
                f"The file's content is not {upload.content_type}.",
                errors=[FieldProblem("contentType", "does not match the file's content")],
            )
        return None

    async def content(
        self,
        actor: Actor,
        patient_id: UUID,
        record_id: UUID,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> PresignedRequest:
        """A short-lived download URL for the file behind a record made from an
        upload; NotFound for any other record."""
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "record.read", patient_id, context, consent)
            found = await self._uploads.for_record(permit, record_id)
            if found is None:
                await self._refuse(uow, permit, "no-content", "Record", record_id)
                raise NotFound("This record has no file.")
            upload, resource_type = found
            request = await self._blobs.presign_get(
                upload.key,
                expires_in=DOWNLOAD_URL_LIFETIME,
                filename=upload.filename,
                content_type=upload.content_type,
            )
            await self._audit.append(permit.event(resource_type, str(record_id)))
            await uow.commit()
        return request

    async def purge_expired(self, *, limit: int = 500) -> int:
        """Deletes the rows and objects of pending uploads past their completion
        deadline; returns how many went. The row goes first and only while still
        pending (a completion holding its lock wins), then the object: a crash in
        between leaves an orphaned object under the patient's prefix, never a
        record without its file."""
        stale = await self._uploads.expired_pending(self._clock.now() - COMPLETION_GRACE, limit)
        purged = 0
        for upload in stale:
            async with self._unit_of_work() as uow:
                deleted = await self._uploads.delete_pending(upload)
                await uow.commit()
            if deleted:
                await self._blobs.delete(upload.key)
                purged += 1
        return purged
