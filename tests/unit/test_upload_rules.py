"""Upload rules without I/O: the allowlist and size limit, file-name cleaning,
content sniffing over the first bytes, and the FHIR resources a finished upload
becomes (checked by the same validator hospital pushes go through). The DICOM
header reader runs on pydicom's bundled test files."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from domain.blobs import MAX_UPLOAD_BYTES
from domain.errors import InvalidInput, UnsupportedUploadType, UploadTooLarge
from domain.fhir.validation import validate_resource
from domain.uploads.fhir_resources import dicom_started, document_reference
from domain.uploads.upload import (
    DEFAULT_MAX_UPLOAD_BYTES,
    DicomHeader,
    Upload,
    UploadRules,
    completion_deadline,
    sanitize_filename,
    sniff,
    upload_key,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def ct_small() -> bytes:
    # Bundled in the pydicom wheel (data/test_files), never fetched.
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


# --- sniffing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (PDF, "application/pdf"),
        (b"%PDF-", "application/pdf"),
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (bytes(128) + b"DICM", "application/dicom"),
        (bytes(128) + b"DICM\x02\x00", "application/dicom"),
        (b"PK\x03\x04\x14\x00", "application/zip"),  # a CD
        (b"PK\x05\x06" + bytes(18), "application/zip"),  # an empty zip
        (b"PK\x07\x08", None),
        (b"", None),
        (b"%PDF", None),  # the dash is part of the header
        (b" %PDF-1.4", None),
        (b"\xff\xd8", None),
        (b"\x89PNG\r\n\x1a", None),  # signature cut short
        (bytes(128) + b"DICX", None),
        (bytes(127) + b"DICM", None),  # one byte early
        (b"DICM" + bytes(128), None),
        (b"hello, I am a text file", None),
        (b"<html><script>alert(1)</script>", None),
    ],
)
def test_sniff(prefix: bytes, expected: str | None) -> None:
    assert sniff(prefix) == expected


def test_sniff_real_dicom_file() -> None:
    assert sniff(ct_small()[:132]) == "application/dicom"


# --- announced type, size, name ------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/pdf", "document"),
        ("image/jpeg", "photo"),
        ("image/png", "photo"),
        ("application/dicom", "dicom"),
        ("application/zip", "archive"),
    ],
)
def test_allowed_types(content_type: str, kind: str) -> None:
    assert UploadRules().check("f.bin", content_type, 1) == ("f.bin", kind)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/html",
        "image/svg+xml",
        "application/octet-stream",
        "APPLICATION/PDF",
        "application/pdf; charset=utf-8",
        "image/gif",
        "",
    ],
)
def test_other_types_are_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedUploadType) as refused:
        UploadRules().check("f.pdf", content_type, 10)
    assert refused.value.errors[0].field == "contentType"


@pytest.mark.parametrize("size", [0, -1, DEFAULT_MAX_UPLOAD_BYTES + 1, 2**62])
def test_sizes_outside_the_limit_are_refused(size: int) -> None:
    with pytest.raises(UploadTooLarge) as refused:
        UploadRules().check("f.pdf", "application/pdf", size)
    assert refused.value.errors[0].field == "size"


def test_limit_is_configurable_and_bounded_by_the_blob_layer() -> None:
    assert DEFAULT_MAX_UPLOAD_BYTES == 100 * 1024 * 1024
    rules = UploadRules(max_bytes=1000)
    assert rules.check("a.pdf", "application/pdf", 1000)[0] == "a.pdf"
    with pytest.raises(UploadTooLarge):
        rules.check("a.pdf", "application/pdf", 1001)
    with pytest.raises(ValueError):
        UploadRules(max_bytes=MAX_UPLOAD_BYTES + 1)
    with pytest.raises(ValueError):
        UploadRules(max_bytes=0)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("scan.pdf", "scan.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\Ana\\Desktop\\résultat IRM.pdf", "résultat IRM.pdf"),
        ("/home/ana/x.png", "x.png"),
        ('evil"name\r\n.pdf', "evilname.pdf"),
        ("tab\there.jpg", "tabhere.jpg"),
        ("  spaced.pdf  ", "spaced.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("e\u0301te\u0301.pdf", "été.pdf"),  # NFC
        ("bidi\u202egnp.pdf", "bidignp.pdf"),  # format characters go too
    ],
)
def test_filenames_are_cleaned(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


@pytest.mark.parametrize("raw", ["", "   ", "dir/", "..", "../..", "\x00\x01", "C:\\"])
def test_filenames_with_nothing_left_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        sanitize_filename(raw)


def test_long_filenames_are_cut_keeping_the_extension() -> None:
    cut = sanitize_filename("a" * 400 + ".pdf")
    assert len(cut) == 255 and cut.endswith(".pdf")
    assert len(sanitize_filename("b" * 400)) == 255


def test_upload_keys_sit_under_the_patients_prefix() -> None:
    patient, upload = uuid.uuid4(), uuid.uuid4()
    key = upload_key(patient, upload)
    assert key == f"patients/{patient}/uploads/{upload}"
    # What account erasure deletes.
    assert key.startswith(f"patients/{patient}/")


def test_completion_deadline_gives_slow_uploads_some_grace() -> None:
    expires = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert expires < completion_deadline(expires) <= expires + timedelta(hours=1)


# --- FHIR resources -------------------------------------------------------------------


def _upload(content_type: str, filename: str = "scan.pdf", size: int = 1234) -> Upload:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    patient, upload_id = uuid.uuid4(), uuid.uuid4()
    return Upload(
        id=upload_id,
        patient_id=patient,
        status="pending",
        key=upload_key(patient, upload_id),
        filename=filename,
        content_type=content_type,
        size=size,
        record_id=None,
        created_at=now,
        expires_at=now + timedelta(minutes=15),
    )


@pytest.mark.parametrize(
    ("content_type", "type_text"),
    [("application/pdf", "Uploaded document"), ("image/jpeg", "Photo"), ("image/png", "Photo")],
)
def test_document_reference_for_documents_and_photos(content_type: str, type_text: str) -> None:
    upload = _upload(content_type, "lettre.pdf")
    now = datetime(2024, 5, 1, 12, 3, tzinfo=UTC)
    resource = document_reference(
        upload, content_url="https://phr.test/v1/records/x/content", now=now
    )
    assert resource["status"] == "current"
    assert resource["type"] == {"text": type_text}
    assert resource["date"] == "2024-05-01T12:03:00Z"
    assert resource["content"] == [
        {
            "attachment": {
                "contentType": content_type,
                "url": "https://phr.test/v1/records/x/content",
                "size": 1234,
                "title": "lettre.pdf",
                "creation": "2024-05-01T12:00:00Z",
            }
        }
    ]
    fields = validate_resource(resource)
    assert fields.resource_type == "DocumentReference"
    assert fields.display == type_text
    assert fields.status == "current"
    assert fields.effective_at == now


def _edited_ct(**changes: str) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    ("date", "time", "zone", "started"),
    [
        ("20240501", "101500", "+0200", "2024-05-01T10:15:00+02:00"),
        ("20240501", "1015", "-0500", "2024-05-01T10:15:00-05:00"),
        ("20240501", "101500.123", "+0000", "2024-05-01T10:15:00+00:00"),
        ("20240501", "101500", None, "2024-05-01"),
        ("20240501", None, "+0100", "2024-05-01"),
        ("2024050", "101500", "+0100", None),
        (None, "101500", "+0100", None),
        ("2024-05-01", None, None, None),
    ],
)
def test_dicom_started(
    date: str | None, time: str | None, zone: str | None, started: str | None
) -> None:
    header = DicomHeader(
        study_uid="1.2", series_uid="1.2.3", study_date=date, study_time=time, timezone_offset=zone
    )
    assert dicom_started(header) == started
