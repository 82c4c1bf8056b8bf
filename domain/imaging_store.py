"""What phr stores of a patient's own imaging, as the use cases see it, and the
ports that keep it: the rows (studies, series, instances, CD imports), the
archive unpacker, the frame renderer and the job queue that runs imports and
previews off the request path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

import msgspec

from domain.access import Permit
from domain.dicom import DicomInstance

ImportState = Literal["processing", "done", "failed"]


def instance_key(patient_id: UUID, digest: str) -> str:
    """Content-addressed: two files claiming one SOPInstanceUID never overwrite
    each other's bytes; the row (one per UID) decides which one is served."""
    return f"patients/{patient_id}/dicom/{digest}"


def preview_key(patient_id: UUID, series_uid: str) -> str:
    return f"patients/{patient_id}/dicom-previews/{series_uid}.png"


class StoredSeries(msgspec.Struct, frozen=True, kw_only=True):
    study_uid: str
    series_uid: str
    modality: str | None
    body_part: str | None
    description: str | None
    number: int | None
    attributes: dict[str, Any]
    instance_count: int
    preview_key: str | None = None
    preview_width: int | None = None
    preview_height: int | None = None


class StoredStudy(msgspec.Struct, frozen=True, kw_only=True):
    study_uid: str
    record_id: UUID | None
    patient_aliases: tuple[str, ...]
    attributes: dict[str, Any]
    series: tuple[StoredSeries, ...]

    @property
    def instance_count(self) -> int:
        return sum(s.instance_count for s in self.series)


class StoredInstance(msgspec.Struct, frozen=True, kw_only=True):
    study_uid: str
    series_uid: str
    instance_uid: str
    sop_class_uid: str
    number: int | None
    transfer_syntax: str
    frames: int
    rows: int | None
    columns: int | None
    key: str
    size: int
    metadata: dict[str, Any] | None = None


class ImportStatus(msgspec.Struct, frozen=True, kw_only=True):
    upload_id: UUID
    filename: str
    status: ImportState
    instances: int = 0
    duplicates: int = 0
    ignored: int = 0
    study_uids: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime


class ImagingStore(Protocol):
    async def add_instance(
        self, permit: Permit, instance: DicomInstance, *, key: str, size: int, at: datetime
    ) -> bool:
        """Adds the instance (and its study and series on first sight, its
        PatientID as an alias); False if this SOPInstanceUID is already kept."""
        ...

    async def studies(self, permit: Permit, study_uid: str | None = None) -> list[StoredStudy]: ...

    async def instances(
        self,
        permit: Permit,
        study_uid: str,
        series_uid: str | None = None,
        instance_uid: str | None = None,
        *,
        with_metadata: bool = False,
    ) -> list[StoredInstance]:
        """In series, then instance-number order."""
        ...

    async def set_record(self, permit: Permit, study_uid: str, record_id: UUID) -> None: ...

    async def set_preview(
        self, permit: Permit, series_uid: str, key: str, width: int, height: int
    ) -> None: ...

    async def consume_upload(self, permit: Permit, upload_id: UUID) -> bool:
        """Deletes the pending upload row (its file now belongs to an import)."""
        ...

    async def add_import(self, permit: Permit, status: ImportStatus, key: str) -> None: ...

    async def update_import(self, permit: Permit, status: ImportStatus) -> None: ...

    async def get_import(self, permit: Permit, upload_id: UUID) -> tuple[ImportStatus, str] | None:
        """The import and the key of its archive."""
        ...


class UnpackedArchive(Protocol):
    ignored: int
    count: int

    def dicom_files(self) -> AsyncIterator[tuple[str, bytes]]: ...


class ArchiveReader(Protocol):
    async def inspect(self, key: str) -> int:
        """Judges the archive's directory; HostileArchive names the problem."""
        ...

    def unpack(self, key: str) -> AbstractAsyncContextManager[UnpackedArchive]:
        """Inflates with the real sizes checked; HostileArchive on any problem."""
        ...


class RenderedImage(msgspec.Struct, frozen=True):
    data: bytes
    media_type: str
    width: int
    height: int


class FrameRenderer(Protocol):
    async def render(self, data: bytes, frame: int, media_type: str) -> RenderedImage:
        """Frame `frame` (1-based) of an instance, windowed, as PNG or JPEG.
        UnreadableDicom if the pixels cannot be decoded; NotFound if no such frame."""
        ...


class ImagingJobs(Protocol):
    async def import_archive(self, patient_id: UUID, upload_id: UUID) -> None: ...

    async def make_previews(self, patient_id: UUID, series_uids: list[str]) -> None: ...
