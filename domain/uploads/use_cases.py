"""The patient's uploads: start (a presigned PUT), complete (checked, then a
record), the download URL of a record's file, and the purge of abandoned ones."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import msgspec

from domain.access import Action, Actor, Permit
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.blobs import PresignedRequest
from domain.consents.consent import Consent
from domain.errors import (
    FieldProblem,
    NotFound,
    UploadContentMismatch,
    UploadExpired,
    UploadNotReceived,
    UploadSizeMismatch,
)
from domain.imaging.ports import ImagingIntake
from domain.ports import (
    AuditLog,
    BlobStore,
    Clock,
    RecordStore,
    UnitOfWork,
    UploadStore,
)
from domain.records.sources import SELF
from domain.uploads.fhir_resources import document_reference, incoming_upload
from domain.uploads.upload import (
    COMPLETION_GRACE,
    DOWNLOAD_URL_LIFETIME,
    SNIFF_BYTES,
    UPLOAD_URL_LIFETIME,
    CompletedUpload,
    StartedUpload,
    Upload,
    UploadRules,
    completed_key,
    completion_deadline,
    sniff,
    upload_key,
)


class PatientUploads:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        uploads: UploadStore,
        records: RecordStore,
        blobs: BlobStore,
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
        return await authorize_audited(
            uow,
            self._audit,
            actor,
            action,
            patient_id,
            now=self._clock.now(),
            consent=consent,
            context=context,
        )

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

        # Seen before the move, so that a missing or short file can still be
        # re-sent through the same URL; once moved, only the moved copy counts
        # (the imaging import too reads the moved copy).
        await self._check_received(upload)
        final_key = completed_key(patient_id, upload_id)
        try:
            await self._blobs.finalize(upload.key, final_key)
        except NotFound:
            raise UploadNotReceived("The file has not been uploaded yet.") from None
        upload = msgspec.structs.replace(upload, key=final_key)
        await self._check_object(upload)
        if upload.kind == "dicom":
            taken = await self._imaging.take_file(actor, patient_id, upload, context=context)
            return CompletedUpload(taken, created=True)
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
            resource = document_reference(upload, content_url=url, now=now)
            incoming = incoming_upload(resource, record_id)
            await self._records.insert(permit, SELF, [incoming])
            await self._uploads.mark_completed(permit, upload_id, record_id, now, final_key)
            await self._audit.append(permit.event(incoming.resource_type, str(record_id)))
            record = await self._records.get(permit, record_id)
            await uow.commit()
        assert record is not None
        return CompletedUpload(record, created=True)

    async def _taken(
        self, actor: Actor, patient_id: UUID, upload_id: UUID, context: RequestContext
    ) -> CompletedUpload:
        """A DICOM file or CD whose upload row the imaging import consumed: a
        repeat `complete` answers with its import status (NotFound, audited, if
        there is no such upload at all)."""
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

    async def _check_received(self, upload: Upload) -> None:
        info = await self._blobs.stat(upload.key)
        if info is None:
            raise UploadNotReceived("The file has not been uploaded yet.")
        if info.size != upload.size:
            raise UploadSizeMismatch(
                f"The stored file has {info.size} bytes; {upload.size} were announced.",
                errors=[FieldProblem("size", "differs from the uploaded file")],
            )

    async def _check_object(self, upload: Upload) -> None:
        """Exists, has the announced size, and is what it claims to be. A file
        whose content is not its declared type is deleted. DICOM is read (and
        refused, and deleted) by the imaging import."""
        try:
            await self._check_received(upload)
        except (UploadNotReceived, UploadSizeMismatch):
            await self._blobs.delete(upload.key)
            raise
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
