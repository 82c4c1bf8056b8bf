"""Reads a DICOM Part 10 file into a `DicomInstance`: identifiers, the attributes
an ImagingStudy shows, and the header as DICOM JSON.

Damaged files make pydicom raise nearly anything (ValueError, KeyError,
NotImplementedError, struct.error, BytesLengthException, RecursionError on deep
sequences, MemoryError on absurd lengths): every failure becomes UnreadableDicom
naming the problem. The read is bounded in bytes (the caller's size limit) and in
time (`timeout`), and runs in a worker process killed at its deadline (parsing
is pure Python, and a thread could not be stopped)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import infra.dicom  # noqa: F401  (silences pydicom's logger before first use)
from domain.errors import UnreadableDicom
from domain.imaging.dicom import DicomInstance, is_uid
from infra.dicom.processes import DicomProcesses

# Elements larger than this are not inlined in the DICOM JSON metadata.
BULK_DATA_THRESHOLD = 1024
READ_TIMEOUT_SECONDS = 20.0


def _text(dataset: Any, keyword: str, limit: int = 256) -> str | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        # Multi-valued elements: the first value is the one that names the thing.
        value = value[0] if hasattr(value, "__getitem__") and len(value) else value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = _clean(str(value)).strip()
    return text[:limit] or None


def _clean(text: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogates (damaged files have both)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _storable(v) for k, v in value.items()}
    return value


def _integer(dataset: Any, keyword: str) -> int | None:
    text = _text(dataset, keyword)
    try:
        number = int(float(text)) if text is not None else None
    except (ValueError, OverflowError):
        return None
    return number if number is None or -(2**31) < number < 2**31 else None


def instance_base(bulk_base: str, study: str, series: str, instance: str) -> str:
    return f"{bulk_base}/studies/{study}/series/{series}/instances/{instance}"


def parse_instance(data: bytes, *, bulk_base: str) -> DicomInstance:
    """Blocking: run it in a thread (DicomReader.read does)."""
    from pydicom import dcmread

    try:
        dataset = dcmread(io.BytesIO(data))
        meta = dataset.file_meta
        study_uid = _text(dataset, "StudyInstanceUID", 65)
        series_uid = _text(dataset, "SeriesInstanceUID", 65)
        instance_uid = _text(dataset, "SOPInstanceUID", 65) or _text(
            meta, "MediaStorageSOPInstanceUID", 65
        )
        sop_class = _text(dataset, "SOPClassUID", 65) or _text(meta, "MediaStorageSOPClassUID", 65)
        syntax = _text(meta, "TransferSyntaxUID", 65)
        missing = [
            name
            for name, value in (
                ("StudyInstanceUID", study_uid),
                ("SeriesInstanceUID", series_uid),
                ("SOPInstanceUID", instance_uid),
                ("SOPClassUID", sop_class),
                ("TransferSyntaxUID", syntax),
            )
            if not is_uid(value)
        ]
        if missing:
            raise UnreadableDicom("The DICOM file lacks a valid " + ", ".join(missing) + ".")
        assert study_uid and series_uid and instance_uid and sop_class and syntax
        has_pixels = any(
            k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
        )
        frames = (_integer(dataset, "NumberOfFrames") or 1) if has_pixels else 0
        uri = instance_base(bulk_base, study_uid, series_uid, instance_uid)
        metadata = dataset.to_json_dict(
            bulk_data_threshold=BULK_DATA_THRESHOLD,
            bulk_data_element_handler=lambda element: f"{uri}/bulkdata/{element.tag:08X}",
            suppress_invalid_tags=True,
        )
        # pydicom's values are str/int/float subclasses (UID, IS, DSfloat): plain
        # JSON types from here on. NaN and infinities are not JSON: refused.
        metadata = _storable(json.loads(json.dumps(metadata, allow_nan=False)))
        return DicomInstance(
            study_uid=study_uid,
            series_uid=series_uid,
            instance_uid=instance_uid,
            sop_class_uid=sop_class,
            transfer_syntax=syntax,
            patient_id=_text(dataset, "PatientID", 64),
            modality=_text(dataset, "Modality", 16),
            body_part=_text(dataset, "BodyPartExamined", 64),
            study_description=_text(dataset, "StudyDescription"),
            series_description=_text(dataset, "SeriesDescription"),
            series_number=_integer(dataset, "SeriesNumber"),
            instance_number=_integer(dataset, "InstanceNumber"),
            study_date=_text(dataset, "StudyDate", 8),
            study_time=_text(dataset, "StudyTime", 16),
            timezone_offset=_text(dataset, "TimezoneOffsetFromUTC", 5),
            frames=max(0, min(frames, 100_000)),
            rows=_integer(dataset, "Rows"),
            columns=_integer(dataset, "Columns"),
            metadata=metadata,
        )
    except UnreadableDicom:
        raise
    except (Exception, RecursionError) as exc:
        # The exception's type names the problem; its message may quote values.
        raise UnreadableDicom(
            f"The file could not be read as DICOM ({type(exc).__name__})."
        ) from None


class PydicomReader:
    """Reads in a killable worker process (infra.dicom.processes) when given
    one: a read past its deadline stops there. Without one (a tool, a test),
    in a thread, which a deadline can only stop waiting for."""

    def __init__(
        self, timeout: float = READ_TIMEOUT_SECONDS, processes: DicomProcesses | None = None
    ):
        self._timeout = timeout
        self._processes = processes

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._processes is not None:
            return await self._processes.run(self._timeout, fn, *args, **kwargs)
        return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), self._timeout)

    async def read(self, data: bytes, *, bulk_base: str) -> DicomInstance:
        try:
            return await self._run(parse_instance, data, bulk_base=bulk_base)
        except TimeoutError:
            raise UnreadableDicom("The DICOM header took too long to read.") from None

    async def bulk_data(self, data: bytes, tag: int) -> bytes | None:
        try:
            return await self._run(_element_bytes, data, tag)
        except TimeoutError:
            raise UnreadableDicom("The DICOM file took too long to read.") from None

    async def frames(
        self, data: bytes, numbers: list[int], *, accept: frozenset[str] | None
    ) -> tuple[str, list[bytes]]:
        from infra.dicom.frames import read_frames

        try:
            return await self._run(read_frames, data, numbers, accept=accept)
        except TimeoutError:
            raise UnreadableDicom("The frames took too long to read.") from None


def _element_bytes(data: bytes, tag: int) -> bytes | None:
    from pydicom import dcmread

    try:
        element = dcmread(io.BytesIO(data)).get(tag)
    except Exception as exc:
        raise UnreadableDicom(
            f"The file could not be read as DICOM ({type(exc).__name__})."
        ) from None
    if element is None or not isinstance(element.value, bytes):
        return None
    return element.value
