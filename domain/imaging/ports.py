"""The ports of the imaging the patient stores (domain.imaging.importing,
domain.imaging.dicomweb): kept beside domain/ports.py, walked by the same architecture
tests, and implemented in infra/ like every other port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.access import Actor, Permit
from domain.audit.events import RequestContext
from domain.imaging.dicom import DicomInstance
from domain.imaging.store import (
    ImportStatus,
    RenderedImage,
    StoredInstance,
    StoredStudy,
    ViewerGrant,
)
from domain.ports import BlobStore
from domain.records.record import StoredRecord
from domain.uploads.upload import Upload


class ImagingIntake(Protocol):
    """Where DICOM uploads go once their bytes are checked (domain.imaging.importing);
    a use case that authorizes itself, not a store."""

    async def take_file(
        self, actor: Actor, patient_id: UUID, upload: Upload, *, context: RequestContext
    ) -> StoredRecord: ...

    async def take_archive(
        self, actor: Actor, patient_id: UUID, upload: Upload, *, context: RequestContext
    ) -> Any: ...

    async def status(
        self, actor: Actor, patient_id: UUID, upload_id: UUID, *, context: RequestContext
    ) -> Any: ...


class ImagingBlobStore(BlobStore, Protocol):
    """The blob store as imaging uses it: DICOM instances are streamed out (never
    whole studies in memory)."""

    def stream(self, key: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The object in chunks; raises NotFound (on first iteration) if missing."""
        ...


class DicomInstanceReader(Protocol):
    async def read(self, data: bytes, *, bulk_base: str) -> DicomInstance:
        """The instance in `data` (a whole Part 10 file); UnreadableDicom naming
        the problem if it is not one, lacks its UIDs, or cannot be read in time.
        `bulk_base` is the DICOMweb base URL the metadata's BulkDataURIs use."""
        ...

    async def bulk_data(self, data: bytes, tag: int) -> bytes | None:
        """The value of top-level element `tag` as stored (pixel data as encoded),
        or None if the instance has no such element."""
        ...

    async def frames(
        self, data: bytes, numbers: list[int], *, accept: frozenset[str] | None
    ) -> tuple[str, list[bytes]]:
        """Frames `numbers` (1-based) of the instance's pixel data, in the first
        form `accept` (media types; None: any) allows: as stored, with the media
        type of its transfer syntax, else decoded to native little-endian bytes
        (`application/octet-stream`). NotAcceptable if neither is accepted;
        UnreadableDicom if the pixel data cannot be split or decoded."""
        ...


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
        study_uid: str | None,
        series_uid: str | None = None,
        instance_uid: str | None = None,
        *,
        with_metadata: bool = False,
    ) -> list[StoredInstance]:
        """In series, then instance-number order; `study_uid` None: every study's."""
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


class FrameRenderer(Protocol):
    async def render(self, data: bytes, frame: int, media_type: str) -> RenderedImage:
        """Frame `frame` (1-based) of an instance, windowed, as PNG or JPEG.
        UnreadableDicom if the pixels cannot be decoded; NotFound if no such frame."""
        ...


class ImagingJobs(Protocol):
    async def import_archive(self, patient_id: UUID, upload_id: UUID) -> None: ...

    async def make_previews(self, patient_id: UUID, series_uids: list[str]) -> None: ...


class ViewerTokens(Protocol):
    """Study-scoped, short-lived tokens for viewers that cannot send a header."""

    def mint(self, patient_id: UUID, study_uid: str, now: datetime) -> str: ...

    def seal(self, grant: ViewerGrant) -> str:
        """A token for exactly this grant (a share's link: until the share ends)."""
        ...

    def session(self, link: ViewerGrant, recipient: str, now: datetime) -> ViewerGrant:
        """The short-lived grant a share link opens for a named recipient: the
        tokens' lifetime, and never past the share's end."""
        ...

    def verify(self, token: str, now: datetime) -> ViewerGrant:
        """AuthenticationFailed if the token is forged, damaged or expired."""
        ...
