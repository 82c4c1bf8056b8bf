"""Imaging rules without I/O: the DICOM reader on pydicom's bundled test files,
the ImagingStudy built from stored rows, the CD (zip) refusals, and QIDO-RS
attribute matching."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime

import pydicom
import pytest
from pydicom.data import get_testdata_file

from domain.errors import UnreadableDicom
from domain.fhir.validation import validate_resource
from domain.imaging.dicom import DicomInstance
from domain.imaging.dicom_archive import (
    ArchiveEntry,
    ArchiveLimits,
    HostileArchive,
    check_content,
    check_listing,
)
from domain.imaging.dicomweb import QidoQuery, matches, study_json
from domain.imaging.fhir import study_resource
from domain.imaging.store import StoredInstance, StoredSeries, StoredStudy
from infra.dicom.header import parse_instance


def ct_small() -> bytes:
    with open(get_testdata_file("CT_small.dcm"), "rb") as handle:
        return handle.read()


def _edited(**changes: str) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    for keyword, value in changes.items():
        if value is None:
            delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _stored(*instances: DicomInstance) -> tuple[StoredStudy, list[StoredInstance]]:
    rows = [
        StoredInstance(
            study_uid=i.study_uid,
            series_uid=i.series_uid,
            instance_uid=i.instance_uid,
            sop_class_uid=i.sop_class_uid,
            number=i.instance_number,
            transfer_syntax=i.transfer_syntax,
            frames=i.frames,
            rows=i.rows,
            columns=i.columns,
            key="k",
            size=1,
        )
        for i in instances
    ]
    first = instances[0]
    series = StoredSeries(
        study_uid=first.study_uid,
        series_uid=first.series_uid,
        modality=first.modality,
        body_part=first.body_part,
        description=first.series_description,
        number=first.series_number,
        attributes=first.series_attributes(),
        instance_count=len(instances),
    )
    study = StoredStudy(
        study_uid=first.study_uid,
        record_id=None,
        patient_aliases=(),
        attributes=first.study_attributes(),
        series=(series,),
    )
    return study, rows


def test_the_reader_takes_what_a_study_needs_from_a_real_file() -> None:
    instance = parse_instance(ct_small(), bulk_base="https://phr.test/v1/dicomweb")
    assert instance.study_uid == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert instance.series_uid == "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
    assert instance.modality == "CT"
    assert instance.transfer_syntax == "1.2.840.10008.1.2.1"
    assert (instance.frames, instance.rows, instance.columns) == (1, 128, 128)
    assert instance.patient_id == "1CT1"
    pixel = instance.metadata["7FE00010"]
    assert pixel["BulkDataURI"].startswith("https://phr.test/v1/dicomweb/studies/")
    assert "InlineBinary" not in pixel


def test_the_study_record_from_stored_rows() -> None:
    instance = parse_instance(ct_small(), bulk_base="https://phr.test")
    study = study_resource(*_stored(instance))
    assert study["id"] == instance.study_uid
    assert study["identifier"] == [
        {"system": "urn:dicom:uid", "value": f"urn:oid:{instance.study_uid}"}
    ]
    assert study["numberOfSeries"] == 1 and study["numberOfInstances"] == 1
    # The file states TimezoneOffsetFromUTC (-0500), so the time is kept.
    assert study["started"] == "2004-01-19T07:27:30-05:00"
    (series,) = study["series"]
    assert series["modality"]["code"] == "CT" and series["number"] == 1
    assert series["instance"][0]["uid"] == instance.instance_uid
    fields = validate_resource(study)
    assert fields.resource_type == "ImagingStudy" and fields.category == "CT"
    assert fields.effective_at == datetime(2004, 1, 19, 12, 27, 30, tzinfo=UTC)
    # Equal rows, equal bytes: a repeat upload leaves the record as it was.
    assert study_resource(*_stored(instance)) == study


def test_without_a_time_zone_only_the_date_is_kept_and_body_part_is_shown() -> None:
    data = _edited(TimezoneOffsetFromUTC=None, BodyPartExamined="CHEST")
    study = study_resource(*_stored(parse_instance(data, bulk_base="x")))
    assert study["started"] == "2004-01-19"
    assert study["series"][0]["bodySite"] == {"display": "CHEST"}


@pytest.mark.parametrize(
    "data",
    [
        b"just some text, not a DICOM file at all" * 10,
        bytes(128) + b"DICM",  # the magic and nothing after it
        bytes(128) + b"DICM" + b"\xff" * 64,
        b"",
        _edited(StudyInstanceUID="not a uid"),
        _edited(SeriesInstanceUID=None),
    ],
)
def test_unreadable_dicom_is_refused_naming_the_problem(data: bytes) -> None:
    with pytest.raises(UnreadableDicom) as refused:
        parse_instance(data, bulk_base="x")
    assert refused.value.detail


def _entry(name: str, size: int = 10, compressed: int = 10, mode: int = 0o100644) -> ArchiveEntry:
    return ArchiveEntry(name=name, compressed_size=compressed, size=size, mode=mode, is_dir=False)


LIMITS = ArchiveLimits(max_entries=3, max_expanded_bytes=10_000_000, max_ratio=100)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([_entry("../x")], "climbs out"),
        ([_entry("DICOM/../../x")], "climbs out"),
        ([_entry("/etc/x")], "absolute"),
        ([_entry("C:\\x")], "absolute"),
        ([_entry("link", mode=stat.S_IFLNK | 0o777)], "symbolic link"),
        ([_entry("inner.ZIP")], "another archive"),
        ([_entry(f"f{n}") for n in range(4)], "more than 3 entries"),
        ([_entry("bomb", size=5_000_000, compressed=1_000)], "times its compressed size"),
        ([_entry("a", 6_000_000, 6_000_000), _entry("b", 6_000_000, 6_000_000)], "expands to more"),
    ],
)
def test_hostile_listings_are_refused(entries: list[ArchiveEntry], problem: str) -> None:
    with pytest.raises(HostileArchive) as refused:
        check_listing(entries, LIMITS)
    assert problem in refused.value.detail


def test_a_plain_cd_listing_passes() -> None:
    check_listing([_entry("DICOMDIR"), _entry("DICOM/IM0001"), _entry("README.TXT")], LIMITS)


@pytest.mark.parametrize(
    "magic", [b"PK\x03\x04", b"\x1f\x8b\x08", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07"]
)
def test_archives_inside_are_refused_by_content(magic: bytes) -> None:
    with pytest.raises(HostileArchive):
        check_content("IM0001", magic + bytes(200))


STUDY = {
    "00080020": {"vr": "DA", "Value": ["20240301"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
    "00100020": {"vr": "LO", "Value": ["HOSP-A-1"]},
    "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
    "00081030": {"vr": "LO", "Value": ["CT Chest"]},
}


@pytest.mark.parametrize(
    ("filters", "hit"),
    [
        ({}, True),
        ({"00080020": "20240301"}, True),
        ({"00080020": "20240101-20241231"}, True),
        ({"00080020": "20250101-"}, False),
        ({"00080020": "-20240301"}, True),
        ({"00100020": "HOSP-*"}, True),
        ({"00100020": "HOSP-B*"}, False),
        ({"00100010": "doe^jane"}, True),
        ({"00100010": "Doe*"}, True),
        ({"0020000D": "9.9\\1.2.3"}, True),
        ({"0020000D": "9.9"}, False),
        ({"00081030": "*chest"}, True),
        ({"00081030": ""}, True),  # universal matching
        ({"00080050": "A1"}, False),  # absent attribute
    ],
)
def test_qido_matching(filters: dict[str, str], hit: bool) -> None:
    assert matches(STUDY, filters) is hit


def test_qido_study_answers_carry_counts_and_includefield() -> None:
    series = StoredSeries(
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        modality="CT",
        body_part=None,
        description=None,
        number=1,
        attributes={},
        instance_count=20,
    )
    study = StoredStudy(
        study_uid="1.2.3",
        record_id=None,
        patient_aliases=(),
        attributes=STUDY | {"00181030": {"vr": "LO", "Value": ["protocol"]}},
        series=(series,),
    )
    plain = study_json(study, "https://phr.test/v1/dicomweb", QidoQuery())
    assert plain["00201208"]["Value"] == [20] and plain["00080061"]["Value"] == ["CT"]
    assert "00181030" not in plain
    assert plain["00081190"]["Value"] == ["https://phr.test/v1/dicomweb/studies/1.2.3"]
    included = study_json(study, "x", QidoQuery(include=frozenset({"00181030"})))
    assert included["00181030"]["Value"] == ["protocol"]


def test_frames_are_cut_as_stored_and_decoded_alike_whatever_the_syntax():
    """WADO-RS frames (infra.dicom.frames) on pydicom's 15-frame dose grid, kept
    in three transfer syntaxes: native bytes agree across all of them, and the
    RLE file's frames as stored are its own fragments."""
    from pydicom.encaps import generate_frames

    from domain.errors import NotAcceptable
    from infra.dicom.frames import read_frames

    OCTET = frozenset({"application/octet-stream"})

    def data(name: str) -> bytes:
        with open(get_testdata_file(name), "rb") as handle:
            return handle.read()

    little = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    size = little.Rows * little.Columns * 4
    expected = [little.PixelData[(n - 1) * size : n * size] for n in (2, 15)]
    assert read_frames(data("rtdose.dcm"), [2, 15], accept=None) == (
        "application/octet-stream",
        expected,
    )
    assert read_frames(data("rtdose_expb.dcm"), [2, 15], accept=None)[1] == expected
    assert read_frames(data("rtdose_rle.dcm"), [2, 15], accept=OCTET)[1] == expected
    rle = pydicom.dcmread(get_testdata_file("rtdose_rle.dcm"))
    fragments = list(generate_frames(rle.PixelData, number_of_frames=15))
    assert read_frames(data("rtdose_rle.dcm"), [2, 15], accept=None) == (
        "image/dicom-rle",
        [fragments[1], fragments[14]],
    )
    with pytest.raises(UnreadableDicom):
        read_frames(data("rtdose.dcm"), [16], accept=None)
    with pytest.raises(NotAcceptable):
        read_frames(data("rtdose_rle.dcm"), [1], accept=frozenset({"image/jpeg"}))
    with pytest.raises(NotAcceptable):
        read_frames(data("rtdose.dcm"), [1], accept=frozenset({"image/jp2"}))
