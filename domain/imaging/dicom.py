"""DICOM instances as phr keeps them: the identifiers that group them into
studies and series, the attributes an ImagingStudy shows, and the header as
DICOM JSON (PS3.18 F.2) for QIDO-RS and WADO-RS metadata.

Rules here are pure: a header reader (infra) turns bytes into a `DicomInstance`;
grouping, the FHIR ImagingStudy built from the stored rows, and the QIDO-RS
attribute matching live below."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from domain.errors import UnreadableDicom

__all__ = ["DicomInstance", "UnreadableDicom"]

# A DICOM UID: digits in dot-separated components, at most 64 characters.
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
DICOM_CODES = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID_SYSTEM = "urn:dicom:uid"

# Preamble (128 bytes) then the "DICM" magic: how a file on a CD is recognised
# as DICOM whatever its name (CD files often have none, or "IM000001").
DICM_OFFSET = 128


def looks_like_dicom(prefix: bytes) -> bool:
    return len(prefix) >= DICM_OFFSET + 4 and prefix[DICM_OFFSET : DICM_OFFSET + 4] == b"DICM"


def is_uid(value: str | None) -> bool:
    return bool(value) and len(value) <= 64 and _UID.fullmatch(value) is not None  # type: ignore[arg-type]


class DicomInstance(msgspec.Struct, frozen=True, kw_only=True):
    """One DICOM Part 10 file as read from its header."""

    study_uid: str
    series_uid: str
    instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    patient_id: str | None = None  # the issuing hospital's id: kept as an alias only
    modality: str | None = None
    body_part: str | None = None
    study_description: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    instance_number: int | None = None
    study_date: str | None = None  # DA: YYYYMMDD
    study_time: str | None = None
    timezone_offset: str | None = None
    frames: int = 0
    rows: int | None = None
    columns: int | None = None
    # The whole header (pixel data as a BulkDataURI) in DICOM JSON.
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    def study_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in self.metadata.items() if k in STUDY_TAGS}

    def series_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in self.metadata.items() if k in SERIES_TAGS}


# --- QIDO-RS attribute levels (PS3.18 table 10.6.1-5) ---------------------------------

STUDY_TAGS = frozenset(
    {
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080090",  # ReferringPhysicianName
        "00081030",  # StudyDescription
        "00100010",  # PatientName
        "00100020",  # PatientID
        "00100030",  # PatientBirthDate
        "00100040",  # PatientSex
        "0020000D",  # StudyInstanceUID
        "00200010",  # StudyID
        "00080005",  # SpecificCharacterSet
        "00080201",  # TimezoneOffsetFromUTC
    }
)
SERIES_TAGS = frozenset(
    {
        "00080060",  # Modality
        "0008103E",  # SeriesDescription
        "0020000E",  # SeriesInstanceUID
        "00200011",  # SeriesNumber
        "00180015",  # BodyPartExamined
        "00080021",  # SeriesDate
        "00080031",  # SeriesTime
    }
)
INSTANCE_TAGS = frozenset(
    {
        "00080016",  # SOPClassUID
        "00080018",  # SOPInstanceUID
        "00200013",  # InstanceNumber
        "00280010",  # Rows
        "00280011",  # Columns
        "00280008",  # NumberOfFrames
        "00280100",  # BitsAllocated
    }
)

Level = Literal["study", "series", "instance"]

# Attributes a QIDO-RS response always carries at each level, besides the computed ones.
DEFAULT_TAGS: dict[Level, frozenset[str]] = {
    "study": STUDY_TAGS,
    "series": SERIES_TAGS | {"0020000D"},
    "instance": INSTANCE_TAGS | {"0020000D", "0020000E"},
}


def element(vr: str, *values: Any) -> dict[str, Any]:
    """A DICOM JSON element; no values gives an empty (present) element."""
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def first_value(attributes: dict[str, Any], tag: str) -> Any:
    values = (attributes.get(tag) or {}).get("Value") or []
    return values[0] if values else None
