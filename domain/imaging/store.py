"""What phr stores of a patient's own imaging, as the use cases see it: studies,
series, instances, CD imports and rendered images (their ports are in
domain/ports.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

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


class RenderedImage(msgspec.Struct, frozen=True):
    data: bytes
    media_type: str
    width: int
    height: int


class ViewerGrant(msgspec.Struct, frozen=True, array_like=True):
    """What a study-scoped viewer token carries: whose study, which, until when.

    A share's viewer link carries the share and the consent it relies on (the
    link lives as long as the share, and every use is checked against both); it
    opens nothing by itself until a recipient names themselves, which yields a
    short-lived session grant carrying that name for the audit."""

    patient_id: UUID
    study_uid: str
    expires: int  # unix seconds
    share_id: UUID | None = None
    consent_id: UUID | None = None
    recipient: str | None = None

    @property
    def is_share_link(self) -> bool:
        return self.share_id is not None and self.recipient is None
