"""Patient uploads through the public API on both object stores: local disk
(the PUT goes through phr's own /v1/blobs routes) and S3 (a real moto server,
reached over real HTTP). Files come back as records with working download
links; refusals leave no record behind.

moto does not check presigned signatures, so for S3 every PUT and GET that
moto served is also put to the independent SigV4 verifier (tests/s3_server.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient
from pydicom.data import get_testdata_file

from domain.clock import FixedClock
from tests.conftest import TEST_PUBLIC_URL, Patient, register_patient, settings_for
from tests.s3_server import S3Server, presigned_refusal

PROBLEM = "application/problem+json"
PUBLIC = TEST_PUBLIC_URL
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(300)
DICOM = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # bundled in the wheel


@dataclass
class Stack:
    kind: str
    client: AsyncTestClient
    http: httpx.AsyncClient | AsyncTestClient  # carries presigned requests
    s3: S3Server | None

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None = None
    ) -> httpx.Response:
        response = await self.http.request(method, url, headers=headers, content=content)
        if self.s3 is not None and response.status_code < 300:
            sent = dict(headers)
            if content is not None:
                sent["Content-Length"] = str(len(content))
            refusal = presigned_refusal(self.s3, method, url, sent)
            assert refusal is None, refusal
        return response


@asynccontextmanager
async def open_stack(
    kind: str,
    database_dsn: str,
    data_dir: Path,
    s3_server: S3Server,
    *,
    clock: FixedClock | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    from api.app import create_app

    env = s3_server.env() if kind == "s3" else {}
    env |= extra_env or {}
    app = create_app(settings_for(database_dsn, data_dir, env), clock=clock)
    async with AsyncTestClient(app=app, base_url=PUBLIC) as client:
        if kind == "s3":
            async with httpx.AsyncClient(timeout=10) as http:
                yield Stack(kind, client, http, s3_server)
        else:
            yield Stack(kind, client, client, None)


@pytest.fixture(params=["local", "s3"])
async def stack(
    request: pytest.FixtureRequest, database_dsn: str, data_dir: Path, s3_server: S3Server
) -> AsyncIterator[Stack]:
    async with open_stack(request.param, database_dsn, data_dir, s3_server) as opened:
        yield opened


@pytest.fixture
async def local(database_dsn: str, data_dir: Path, s3_server: S3Server) -> AsyncIterator[Stack]:
    async with open_stack("local", database_dsn, data_dir, s3_server) as opened:
        yield opened


async def start(
    stack: Stack, patient: Patient, filename: str, content_type: str, size: int
) -> httpx.Response:
    return await stack.client.post(
        "/v1/uploads",
        json={"filename": filename, "contentType": content_type, "size": size},
        headers=patient.headers,
    )


async def put_file(
    stack: Stack, patient: Patient, filename: str, content_type: str, body: bytes
) -> dict:
    response = await start(stack, patient, filename, content_type, len(body))
    assert response.status_code == 201, response.text
    started = response.json()
    put = await stack.send(started["method"], started["uploadUrl"], started["headers"], body)
    assert put.status_code in (200, 204), put.text
    return started


async def complete(stack: Stack, patient: Patient, upload_id: str) -> httpx.Response:
    return await stack.client.post(f"/v1/uploads/{upload_id}/complete", headers=patient.headers)


async def download(
    stack: Stack, patient: Patient, record_id: str, *, now: datetime | None = None
) -> httpx.Response:
    response = await stack.client.get(
        f"/v1/records/{record_id}/content", headers=patient.headers, follow_redirects=False
    )
    assert response.status_code in (302, 307), response.text
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    query = dict(parse_qsl(urlsplit(location).query))
    if stack.s3 is not None:
        assert int(query["X-Amz-Expires"]) <= 300
    else:
        assert int(query["exp"]) - (now or datetime.now(UTC)).timestamp() <= 300
    fetched = await stack.send("GET", location, {})
    assert fetched.status_code == 200, fetched.text
    return fetched


def assert_problem(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/" + kind), response.json()


async def timeline(stack: Stack, patient: Patient) -> list[dict]:
    response = await stack.client.get("/v1/records", headers=patient.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def audit_actions(stack: Stack, patient: Patient) -> list[tuple[str, str, list[str]]]:
    response = await stack.client.get("/v1/audit?limit=200", headers=patient.headers)
    assert response.status_code == 200, response.text
    return [(e["action"], e["outcome"], e["resourceIds"]) for e in response.json()["items"]]


# --- round trips on both stores --------------------------------------------------------


async def test_pdf_goes_up_and_comes_back_as_a_document_record(stack: Stack) -> None:
    patient = await register_patient(stack.client)
    response = await start(
        stack, patient, "C:\\scans\\lettre de sortie.pdf", "application/pdf", len(PDF)
    )
    assert response.status_code == 201, response.text
    started = response.json()
    assert set(started) == {"id", "uploadUrl", "method", "headers", "expiresAt", "filename"}
    assert started["method"] == "PUT"
    assert started["headers"] == {"Content-Type": "application/pdf"}
    assert started["filename"] == "lettre de sortie.pdf"
    expires = datetime.fromisoformat(started["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15, seconds=1)
    put = await stack.send("PUT", started["uploadUrl"], started["headers"], PDF)
    assert put.status_code in (200, 204), put.text

    done = await complete(stack, patient, started["id"])
    assert done.status_code == 201, done.text
    record = done.json()
    assert record["type"] == "DocumentReference"
    assert record["selfReported"] is True and record["source"]["kind"] == "self"
    resource = record["resource"]
    assert resource["status"] == "current"
    assert resource["type"] == {"text": "Uploaded document"}
    attachment = resource["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert attachment["url"] == f"{PUBLIC}/v1/records/{record['id']}/content"
    assert attachment["size"] == len(PDF)
    assert attachment["title"] == "lettre de sortie.pdf"

    items = await timeline(stack, patient)
    assert [(i["id"], i["type"], i["display"]) for i in items] == [
        (record["id"], "DocumentReference", "Uploaded document")
    ]

    fetched = await download(stack, patient, record["id"])
    assert fetched.content == PDF
    assert fetched.headers["content-type"].startswith("application/pdf")
    disposition = fetched.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert "lettre%20de%20sortie.pdf" in disposition

    # Completing again answers the same record and creates nothing.
    again = await complete(stack, patient, started["id"])
    assert again.status_code == 200, again.text
    assert again.json()["id"] == record["id"]
    assert len(await timeline(stack, patient)) == 1

    actions = await audit_actions(stack, patient)
    assert ("upload.create", "success", [started["id"]]) in actions
    assert ("record.create", "success", [record["id"]]) in actions
    assert ("record.read", "success", [record["id"]]) in actions


async def test_dicom_goes_up_and_comes_back_as_an_imaging_study(stack: Stack) -> None:
    patient = await register_patient(stack.client)
    started = await put_file(stack, patient, "CT_small.dcm", "application/dicom", DICOM)
    done = await complete(stack, patient, started["id"])
    assert done.status_code == 201, done.text
    record = done.json()
    assert record["type"] == "ImagingStudy"
    study = record["resource"]
    uid = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert study["identifier"] == [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}]
    assert study["numberOfSeries"] == 1 and study["numberOfInstances"] == 1
    assert study["series"][0]["modality"]["code"] == "CT"
    assert study["started"] == "2004-01-19T07:27:30-05:00"

    items = await timeline(stack, patient)
    assert [(i["id"], i["type"], i["category"]) for i in items] == [
        (record["id"], "ImagingStudy", "CT")
    ]

    response = await stack.client.get("/v1/imaging", headers=patient.headers)
    assert response.status_code == 200, response.text
    (listed,) = response.json()
    assert listed["recordId"] == record["id"]
    assert listed["studyUid"] == uid
    assert listed["modalities"] == ["CT"]
    assert {link["kind"] for link in listed["links"]} == {"dicomweb", "viewer"}
    # The file itself comes back through WADO-RS, byte for byte.
    series = study["series"][0]["uid"]
    instance = study["series"][0]["instance"][0]["uid"]
    fetched = await stack.client.get(
        f"/v1/dicomweb/studies/{uid}/series/{series}/instances/{instance}", headers=patient.headers
    )
    assert fetched.status_code == 200
    assert DICOM in fetched.content

    # A repeat answers with what the import made of the file.
    again = await complete(stack, patient, started["id"])
    assert again.status_code == 200 and again.json()["status"] == "done"


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "body", "filename"),
    [
        ("application/pdf", PNG, "photo.pdf"),
        ("application/dicom", b"hello, just text\n" * 20, "notes.dcm"),
        ("image/png", PDF, "doc.png"),
        ("image/jpeg", b"<html><script>alert(1)</script></html>", "x.jpg"),
    ],
)
async def test_content_that_is_not_its_declared_type_is_refused_and_deleted(
    stack: Stack, declared: str, body: bytes, filename: str
) -> None:
    patient = await register_patient(stack.client)
    started = await put_file(stack, patient, filename, declared, body)
    refused = await complete(stack, patient, started["id"])
    assert_problem(refused, 422, "upload-content-mismatch")
    assert await timeline(stack, patient) == []
    # The object is gone: completing again finds nothing uploaded.
    assert_problem(await complete(stack, patient, started["id"]), 409, "upload-not-received")


async def test_a_dicom_magic_without_a_dicom_header_is_refused(stack: Stack) -> None:
    patient = await register_patient(stack.client)
    body = bytes(128) + b"DICM" + b"\xff" * 200
    started = await put_file(stack, patient, "fake.dcm", "application/dicom", body)
    assert_problem(await complete(stack, patient, started["id"]), 422, "unreadable-dicom")
    assert await timeline(stack, patient) == []


async def test_completing_before_uploading_is_a_conflict(stack: Stack) -> None:
    patient = await register_patient(stack.client)
    response = await start(stack, patient, "a.pdf", "application/pdf", len(PDF))
    refused = await complete(stack, patient, response.json()["id"])
    assert_problem(refused, 409, "upload-not-received")
    assert "not uploaded yet" in refused.json()["detail"].lower() or "not been uploaded" in (
        refused.json()["detail"].lower()
    )


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        (
            {"filename": "a.txt", "contentType": "text/plain", "size": 10},
            "unsupported-upload-type",
            422,
        ),
        (
            {"filename": "a.svg", "contentType": "image/svg+xml", "size": 10},
            "unsupported-upload-type",
            422,
        ),
        (
            {"filename": "a.pdf", "contentType": "application/pdf", "size": 0},
            "upload-size-not-allowed",
            422,
        ),
        (
            {"filename": "a.pdf", "contentType": "application/pdf", "size": -5},
            "upload-size-not-allowed",
            422,
        ),
        (
            {"filename": "a.pdf", "contentType": "application/pdf", "size": 100 * 1024 * 1024 + 1},
            "upload-size-not-allowed",
            422,
        ),
        ({"filename": "..", "contentType": "application/pdf", "size": 10}, "invalid-input", 422),
        (
            {"filename": "a.pdf", "contentType": "application/pdf", "size": 10, "key": "x"},
            "invalid-request",
            400,
        ),
        ({"filename": "a.pdf", "contentType": "application/pdf"}, "invalid-request", 400),
    ],
)
async def test_bad_upload_requests_are_refused(
    local: Stack, body: dict, kind: str, status: int
) -> None:
    patient = await register_patient(local.client)
    response = await local.client.post("/v1/uploads", json=body, headers=patient.headers)
    assert_problem(response, status, kind)


async def test_the_size_limit_is_configurable(
    database_dsn: str, data_dir: Path, s3_server: S3Server
) -> None:
    async with open_stack(
        "local",
        database_dsn,
        data_dir,
        s3_server,
        extra_env={"PHR_UPLOAD_MAX_BYTES": str(len(PDF))},
    ) as stack:
        patient = await register_patient(stack.client)
        assert_problem(
            await start(stack, patient, "a.pdf", "application/pdf", len(PDF) + 1),
            422,
            "upload-size-not-allowed",
        )
        started = await put_file(stack, patient, "a.pdf", "application/pdf", PDF)
        assert (await complete(stack, patient, started["id"])).status_code == 201


async def test_a_size_other_than_announced_is_refused(
    database_dsn: str, data_dir: Path, s3_server: S3Server
) -> None:
    # Only reachable on S3 servers that do not check the signed Content-Length
    # (moto); AWS and phr's local route refuse such a PUT themselves.
    async with open_stack("s3", database_dsn, data_dir, s3_server) as stack:
        patient = await register_patient(stack.client)
        response = await start(stack, patient, "a.pdf", "application/pdf", len(PDF) + 10)
        started = response.json()
        put = await stack.http.put(started["uploadUrl"], headers=started["headers"], content=PDF)
        assert put.status_code == 200
        assert_problem(await complete(stack, patient, started["id"]), 422, "upload-size-mismatch")
        assert await timeline(stack, patient) == []


async def test_another_patients_upload_and_content_answer_404(stack: Stack) -> None:
    owner = await register_patient(stack.client)
    stranger = await register_patient(stack.client)
    started = await put_file(stack, owner, "mine.pdf", "application/pdf", PDF)

    assert_problem(await complete(stack, stranger, started["id"]), 404, "not-found")
    assert_problem(await complete(stack, stranger, str(uuid.uuid4())), 404, "not-found")
    done = await complete(stack, owner, started["id"])
    assert done.status_code == 201
    record_id = done.json()["id"]
    # Still the owner's, after completion too.
    assert_problem(await complete(stack, stranger, started["id"]), 404, "not-found")
    response = await stack.client.get(
        f"/v1/records/{record_id}/content", headers=stranger.headers, follow_redirects=False
    )
    assert_problem(response, 404, "not-found")
    assert await timeline(stack, stranger) == []
    # The stranger's probing is in the stranger's own audit, not the owner's.
    assert ("record.read", "denied", [record_id]) in await audit_actions(stack, stranger)
    assert all(
        ids != [record_id] or outcome == "success"
        for _, outcome, ids in await audit_actions(stack, owner)
    )


async def test_records_without_a_file_have_no_content(local: Stack) -> None:
    patient = await register_patient(local.client)
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Weight"},
        "valueQuantity": {"value": 70, "unit": "kg"},
    }
    created = await local.client.post("/v1/records", json=observation, headers=patient.headers)
    assert created.status_code == 201, created.text
    response = await local.client.get(
        f"/v1/records/{created.json()['id']}/content",
        headers=patient.headers,
        follow_redirects=False,
    )
    assert_problem(response, 404, "not-found")
    response = await local.client.get(
        f"/v1/records/{uuid.uuid4()}/content", headers=patient.headers, follow_redirects=False
    )
    assert_problem(response, 404, "not-found")
    unauthenticated = await local.client.get(f"/v1/records/{uuid.uuid4()}/content")
    assert unauthenticated.status_code == 401


async def sign_in_again(stack: Stack, patient: Patient) -> Patient:
    response = await stack.client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert response.status_code == 200, response.text
    return Patient(patient.email, patient.password, response.json(), patient.profile)


async def test_an_expired_upload_cannot_be_completed_and_is_swept(
    database_dsn: str, data_dir: Path, s3_server: S3Server
) -> None:
    from infra.bootstrap import close_services, open_services

    clock = FixedClock(datetime.now(UTC))
    async with open_stack("local", database_dsn, data_dir, s3_server, clock=clock) as stack:
        patient = await register_patient(stack.client)
        started = await put_file(stack, patient, "late.pdf", "application/pdf", PDF)
        stored = data_dir / "files" / "patients" / patient.id / "uploads" / started["id"]
        assert stored.read_bytes() == PDF
        # Inside the grace after the URL's expiry, completion still works...
        kept = await put_file(stack, patient, "in-time.pdf", "application/pdf", PDF)
        clock.advance(minutes=40)
        patient = await sign_in_again(stack, patient)  # access tokens live 15 minutes
        assert (await complete(stack, patient, kept["id"])).status_code == 201
        # ...past it, it does not.
        clock.advance(minutes=6)
        assert_problem(await complete(stack, patient, started["id"]), 409, "upload-expired")
        assert [i["display"] for i in await timeline(stack, patient)] == ["Uploaded document"]

        # The sweeper (opened in this loop, same data folder) removes the
        # expired pending upload's row and file, and nothing else.
        settings = settings_for(database_dsn, data_dir)
        services = await open_services(settings, database_dsn, clock=clock)
        try:
            # In batches, as the worker's job does: other tests of this process
            # may have left many expired uploads in the shared database.
            purged = 0
            while batch := await services.patient_uploads.purge_expired(limit=500):
                purged += batch
        finally:
            await close_services(services)
        assert purged >= 1
        assert not stored.exists()
        assert_problem(await complete(stack, patient, started["id"]), 404, "not-found")
        completed = await complete(stack, patient, kept["id"])
        assert completed.status_code == 200
        fetched = await download(stack, patient, completed.json()["id"], now=clock.now())
        assert fetched.content == PDF
