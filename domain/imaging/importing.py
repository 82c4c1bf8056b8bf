"""A patient's DICOM becomes studies: single files on upload, whole CDs (zips)
in a background job, previews after either.

Instances are grouped by StudyInstanceUID whatever PatientID they carry (each
hospital's CD has its own id for the same person: kept as aliases); a
SOPInstanceUID already kept is counted as a duplicate and changes nothing. Each
study is one ImagingStudy record on the timeline, rebuilt from the stored rows,
so a repeat upload leaves the record exactly as it was."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from uuid import UUID

import msgspec

from domain.access import Action, Actor, Permit, SystemActor
from domain.audit.events import NO_REQUEST, RequestContext
from domain.audited_access import authorize_audited
from domain.errors import NotFound, UnreadableDicom
from domain.fhir.bundle import ParsedEntry
from domain.fhir.validation import validate_resource
from domain.imaging.dicom import DicomInstance
from domain.imaging.dicom_archive import HostileArchive
from domain.imaging.fhir import study_resource
from domain.imaging.ports import (
    ArchiveReader,
    DicomInstanceReader,
    FrameRenderer,
    ImagingBlobStore,
    ImagingJobs,
    ImagingStore,
)
from domain.imaging.store import (
    ImportState,
    ImportStatus,
    instance_key,
    preview_key,
)
from domain.ports import AuditLog, Clock, RecordStore, UnitOfWork
from domain.records.ingest import ingest
from domain.records.record import StoredRecord
from domain.records.sources import SELF
from domain.uploads.upload import Upload

_IMPORTER = SystemActor("imaging-import")
# A reason list is for a person to read: a CD of 2,000 broken files needs 20 lines.
_MAX_REASONS = 20


class ImagingImport:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        store: ImagingStore,
        records: RecordStore,
        blobs: ImagingBlobStore,
        reader: DicomInstanceReader,
        archives: ArchiveReader,
        renderer: FrameRenderer,
        jobs: ImagingJobs,
        audit: AuditLog,
        clock: Clock,
        bulk_base: str,
    ):
        self._unit_of_work = unit_of_work
        self._store = store
        self._records = records
        self._blobs = blobs
        self._reader = reader
        self._archives = archives
        self._renderer = renderer
        self._jobs = jobs
        self._audit = audit
        self._clock = clock
        self._bulk_base = bulk_base

    async def _authorize(
        self,
        uow: UnitOfWork,
        actor: Actor,
        action: Action,
        patient_id: UUID,
        context: RequestContext,
    ) -> Permit:
        return await authorize_audited(
            uow, self._audit, actor, action, patient_id, now=self._clock.now(), context=context
        )

    # --- one DICOM file, at `complete` -------------------------------------------

    async def take_file(
        self, actor: Actor, patient_id: UUID, upload: Upload, *, context: RequestContext
    ) -> StoredRecord:
        """The upload's file joins its study; the study's record is returned.
        A file that is not readable DICOM is deleted and refused (422)."""
        data = await self._blobs.read(upload.key)
        try:
            instance = await self._reader.read(data, bulk_base=self._bulk_base)
        except UnreadableDicom:
            await self._blobs.delete(upload.key)
            raise
        key = instance_key(patient_id, hashlib.sha256(data).hexdigest())
        await self._blobs.put(key, data, content_type="application/dicom")
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "record.create", patient_id, context)
            if not await self._store.consume_upload(permit, upload.id):
                raise NotFound("No upload with this id.")
            now = self._clock.now()
            try:
                added = await self._store.add_instance(
                    permit, instance, key=key, size=len(data), at=now
                )
            except UnreadableDicom:
                # Contradicts what is kept (its series is another study's): refused,
                # and neither copy of its bytes stays.
                await self._blobs.delete(key)
                await self._blobs.delete(upload.key)
                raise
            record_id = await self._rebuild_record(permit, instance.study_uid)
            await self._store.add_import(
                permit,
                ImportStatus(
                    upload_id=upload.id,
                    filename=upload.filename,
                    status="done",
                    instances=int(added),
                    duplicates=int(not added),
                    study_uids=(instance.study_uid,),
                    created_at=now,
                    updated_at=now,
                ),
                key,
            )
            record = await self._records.get(permit, record_id)
            if added:
                await self._jobs.make_previews(patient_id, [instance.series_uid])
            await uow.commit()
        await self._blobs.delete(upload.key)
        assert record is not None
        return record

    async def _rebuild_record(self, permit: Permit, study_uid: str) -> UUID:
        study = (await self._store.studies(permit, study_uid))[0]
        instances = await self._store.instances(permit, study_uid)
        resource = study_resource(study, instances)
        entry = ParsedEntry(
            index=0,
            full_url=None,
            resource=resource,
            fields=validate_resource(resource),
            is_supporting=False,
        )
        result = await ingest(permit, SELF, [entry], records=self._records, audit=self._audit)
        record_id = result.record_ids[0] if result.record_ids else study.record_id
        if record_id is None:  # unchanged, yet never linked: find it by its FHIR id
            current = await self._records.current_versions(
                permit, SELF, [("ImagingStudy", study_uid)]
            )
            record_id = current[("ImagingStudy", study_uid)].record_id
        if record_id != study.record_id:
            await self._store.set_record(permit, study_uid, record_id)
        return record_id

    # --- a CD (zip) --------------------------------------------------------------

    async def take_archive(
        self, actor: Actor, patient_id: UUID, upload: Upload, *, context: RequestContext
    ) -> ImportStatus:
        """Judges the archive's directory (422 and the file deleted if hostile),
        then hands it to the import job; the status says `processing`."""
        try:
            await self._archives.inspect(upload.key)
        except HostileArchive:
            await self._blobs.delete(upload.key)
            raise
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "record.create", patient_id, context)
            if not await self._store.consume_upload(permit, upload.id):
                raise NotFound("No upload with this id.")
            now = self._clock.now()
            status = ImportStatus(
                upload_id=upload.id,
                filename=upload.filename,
                status="processing",
                created_at=now,
                updated_at=now,
            )
            await self._store.add_import(permit, status, upload.key)
            await self._audit.append(permit.event("Upload", str(upload.id)))
            await self._jobs.import_archive(patient_id, upload.id)
            await uow.commit()
        return status

    async def status(
        self, actor: Actor, patient_id: UUID, upload_id: UUID, *, context: RequestContext
    ) -> ImportStatus:
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, actor, "imaging.list", patient_id, context)
            found = await self._store.get_import(permit, upload_id)
            if found is None:
                await self._audit.append(permit.refusal("not-found", "Upload", str(upload_id)))
                await uow.commit()
                raise NotFound("No import with this id.")
            await self._audit.append(permit.event("Upload", str(upload_id)))
            await uow.commit()
            return found[0]

    async def run_archive(self, patient_id: UUID, upload_id: UUID) -> ImportStatus:
        """The job: unpack, read each DICOM file, group, store, then previews.
        A hostile archive found while inflating fails the import and keeps
        nothing of it; unreadable DICOM files are skipped with their reasons."""
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, _IMPORTER, "record.ingest", patient_id, NO_REQUEST)
            found = await self._store.get_import(permit, upload_id)
            await uow.commit()
        if found is None or found[0].status != "processing":
            return found[0] if found else _missing(upload_id, self._clock)
        status, archive_key = found
        reasons: list[str] = []
        added = duplicates = 0
        studies: dict[str, None] = {}
        touched_series: dict[str, None] = {}
        try:
            async with self._archives.unpack(archive_key) as unpacked:
                ignored = unpacked.ignored
                async for name, data in unpacked.dicom_files():
                    try:
                        instance = await self._reader.read(data, bulk_base=self._bulk_base)
                    except UnreadableDicom as exc:
                        ignored += 1
                        # The DICOMDIR is DICOM too, but an index with no study.
                        is_index = name.replace("\\", "/").rsplit("/", 1)[-1].upper() == "DICOMDIR"
                        if not is_index and len(reasons) < _MAX_REASONS:
                            reasons.append(f"{name[:120]}: {exc.detail}")
                        continue
                    key = instance_key(patient_id, hashlib.sha256(data).hexdigest())
                    await self._blobs.put(key, data, content_type="application/dicom")
                    async with self._unit_of_work() as uow:
                        permit = await self._authorize(
                            uow, _IMPORTER, "record.ingest", patient_id, NO_REQUEST
                        )
                        try:
                            is_new = await self._store.add_instance(
                                permit, instance, key=key, size=len(data), at=self._clock.now()
                            )
                        except UnreadableDicom as exc:
                            await self._blobs.delete(key)
                            ignored += 1
                            if len(reasons) < _MAX_REASONS:
                                reasons.append(f"{name[:120]}: {exc.detail}")
                            continue
                        await uow.commit()
                    studies[instance.study_uid] = None
                    if is_new:
                        added += 1
                        touched_series[instance.series_uid] = None
                    else:
                        duplicates += 1
        except HostileArchive as exc:
            await self._blobs.delete(archive_key)
            return await self._finish(patient_id, status, "failed", reasons=[exc.detail])
        final = self._final(
            status,
            "done",
            reasons=reasons,
            studies=list(studies),
            instances=added,
            duplicates=duplicates,
            ignored=ignored,
        )
        # The records, the preview job and the import's outcome commit together:
        # a rerun after a crash finds the import done and leaves it as it is.
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, _IMPORTER, "record.ingest", patient_id, NO_REQUEST)
            for study_uid in studies:
                await self._rebuild_record(permit, study_uid)
            if touched_series:
                await self._jobs.make_previews(patient_id, list(touched_series))
            await self._store.update_import(permit, final)
            await self._audit.append(permit.event("Upload", str(status.upload_id)))
            await uow.commit()
        await self._blobs.delete(archive_key)
        return final

    async def fail_import(self, patient_id: UUID, upload_id: UUID, reason: str) -> None:
        """Marks a still-processing import failed (its job ended in an error)."""
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, _IMPORTER, "record.ingest", patient_id, NO_REQUEST)
            found = await self._store.get_import(permit, upload_id)
            await uow.commit()
        if found is not None and found[0].status == "processing":
            await self._finish(patient_id, found[0], "failed", reasons=[reason])

    def _final(
        self,
        status: ImportStatus,
        state: ImportState,
        *,
        reasons: list[str],
        studies: list[str],
        instances: int = 0,
        duplicates: int = 0,
        ignored: int = 0,
    ) -> ImportStatus:
        return msgspec.structs.replace(
            status,
            status=state,
            instances=instances,
            duplicates=duplicates,
            ignored=ignored,
            study_uids=tuple(studies),
            reasons=tuple(reasons),
            updated_at=self._clock.now(),
        )

    async def _finish(
        self, patient_id: UUID, status: ImportStatus, state: ImportState, *, reasons: list[str]
    ) -> ImportStatus:
        final = self._final(status, state, reasons=reasons, studies=[])
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, _IMPORTER, "record.ingest", patient_id, NO_REQUEST)
            await self._store.update_import(permit, final)
            await self._audit.append(permit.event("Upload", str(status.upload_id)))
            await uow.commit()
        return final

    # --- previews ----------------------------------------------------------------

    async def make_previews(self, patient_id: UUID, series_uids: list[str]) -> int:
        """The job: for each series, its middle instance's first frame, windowed
        as the file says, stored as PNG. A series whose pixels cannot be decoded
        keeps no preview (the viewer shows its description instead)."""
        made = 0
        async with self._unit_of_work() as uow:
            permit = await self._authorize(uow, _IMPORTER, "record.read", patient_id, NO_REQUEST)
            studies = await self._store.studies(permit)
            await uow.commit()
        wanted = set(series_uids)
        for study in studies:
            for series in study.series:
                if series.series_uid not in wanted:
                    continue
                async with self._unit_of_work() as uow:
                    permit = await self._authorize(
                        uow, _IMPORTER, "record.read", patient_id, NO_REQUEST
                    )
                    instances = await self._store.instances(
                        permit, study.study_uid, series.series_uid
                    )
                    await uow.commit()
                with_pixels = [i for i in instances if i.frames > 0]
                if not with_pixels:
                    continue
                middle = with_pixels[len(with_pixels) // 2]
                data = await self._blobs.read(middle.key)
                try:
                    image = await self._renderer.render(data, 1, "image/png")
                except (UnreadableDicom, NotFound):
                    continue
                key = preview_key(patient_id, series.series_uid)
                await self._blobs.put(key, image.data, content_type="image/png")
                async with self._unit_of_work() as uow:
                    permit = await self._authorize(
                        uow, _IMPORTER, "record.ingest", patient_id, NO_REQUEST
                    )
                    await self._store.set_preview(
                        permit, series.series_uid, key, image.width, image.height
                    )
                    await uow.commit()
                made += 1
        return made


def _missing(upload_id: UUID, clock: Clock) -> ImportStatus:
    now = clock.now()
    return ImportStatus(
        upload_id=upload_id,
        filename="-",
        status="failed",
        reasons=("The import no longer exists.",),
        created_at=now,
        updated_at=now,
    )


__all__ = ["DicomInstance", "ImagingImport", "study_resource"]
