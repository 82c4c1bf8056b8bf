"""Reads the attributes an ImagingStudy needs from a DICOM Part 10 file with
pydicom: the header only (`stop_before_pixels`), in a worker thread, since
parsing is pure Python and a header can hold thousands of elements."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from domain.errors import UnreadableDicom
from domain.uploads.upload import DicomHeader


def _text(dataset: Any, keyword: str, limit: int = 256) -> str | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        # Multi-valued elements: the first value is the one that names the thing.
        value = value[0] if hasattr(value, "__getitem__") and len(value) else value
    text = str(value).strip().replace("\x00", "")
    return text[:limit] or None


def _integer(dataset: Any, keyword: str) -> int | None:
    text = _text(dataset, keyword)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def parse_header(data: bytes) -> DicomHeader:
    """The header of `data` (a whole file or its first bytes); UnreadableDicom
    if it is not a DICOM Part 10 file or has no study or series UID."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        dataset = dcmread(io.BytesIO(data), stop_before_pixels=True)
        # Elements are decoded lazily: read every one used here inside the try.
        study_uid = _text(dataset, "StudyInstanceUID", 64)
        series_uid = _text(dataset, "SeriesInstanceUID", 64)
        header = DicomHeader(
            study_uid=study_uid or "",
            series_uid=series_uid or "",
            instance_uid=_text(dataset, "SOPInstanceUID", 64),
            sop_class_uid=_text(dataset, "SOPClassUID", 64),
            modality=_text(dataset, "Modality", 16),
            study_date=_text(dataset, "StudyDate", 8),
            study_time=_text(dataset, "StudyTime", 16),
            timezone_offset=_text(dataset, "TimezoneOffsetFromUTC", 5),
            study_description=_text(dataset, "StudyDescription"),
            series_description=_text(dataset, "SeriesDescription"),
            series_number=_integer(dataset, "SeriesNumber"),
            instance_number=_integer(dataset, "InstanceNumber"),
            body_part=_text(dataset, "BodyPartExamined", 64),
        )
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, OSError) as exc:
        raise UnreadableDicom(
            f"The file could not be read as DICOM ({type(exc).__name__})."
        ) from None
    if not header.study_uid or not header.series_uid:
        raise UnreadableDicom("The DICOM file has no StudyInstanceUID or SeriesInstanceUID.")
    return header


class PydicomHeaderReader:
    async def read_header(self, data: bytes) -> DicomHeader:
        return await asyncio.to_thread(parse_header, data)
