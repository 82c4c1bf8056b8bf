"""Item: nothing personal in logs.

A whole story runs against `phr serve` (its own embedded PostgreSQL) with logs at
DEBUG: register, verify the address with the mailed code (and a duplicate registration, which PostgreSQL used to log with
the email in the unique violation's DETAIL), a wrong and a right sign-in, a
refresh, linking a hospital, the Synthea bundle pushed, a self-reported record, a
DICOM upload, reads and an export. Then everything the service and its PostgreSQL
wrote is scanned for the patient's email, name, password, MRN, link code, record
values, tokens and the DICOM file's patient name: none may appear.

(Shares are not in this story yet: they are not on this branch.)"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydicom.data import get_testdata_file
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import serve_data_dir  # noqa: F401 - fixture
from tests.e2e.service import REPO_ROOT, running_service, service_env
from tests.mail_support import code_from_folder

SYNTHEA = Path(__file__).parents[1] / "data" / "fhir" / "synthea" / "synthea-patient-bundle.json"
DICOM = Path(get_testdata_file("CT_small.dcm")).read_bytes()


def signed(secret: str, body: bytes) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "content-type": "application/json",
    }


def test_a_whole_story_at_debug__no_personal_value_in_any_log(serve_data_dir):  # noqa: F811
    email = f"ada.{uuid.uuid4().hex[:8]}@example.org"
    name = f"Ada Lovelace{uuid.uuid4().hex[:6]}"
    password = f"violet kettle {uuid.uuid4().hex[:8]} meadow"
    wrong = f"wrong horse {uuid.uuid4().hex[:8]} staple"
    mrn = f"MRN{uuid.uuid4().hex[:10]}"
    marker = f"{uuid.uuid4().int % 10**9}.125"
    synthea = json.loads(SYNTHEA.read_text())
    seen: list[str] = []

    with running_service(serve_data_dir, env={"PHR_LOG_LEVEL": "DEBUG"}) as service:
        created = subprocess.run(
            [sys.executable, "-m", "api.cli", "hospital", "add", "--name", "Story General"],
            cwd=REPO_ROOT,
            env=service_env(serve_data_dir, 0),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        hospital = json.loads(created.stdout)
        with service.client() as http:
            r = http.post(
                "/v1/auth/register",
                json={"email": email, "password": password, "displayName": name},
            )
            assert r.status_code == 202, r.text
            code = code_from_folder(serve_data_dir / "mail", email)
            seen += [code, code.replace("-", "")]
            verified = http.post("/v1/auth/verify-email", json={"email": email, "code": code})
            assert verified.status_code == 204, verified.text
            # Answered like the first: the owner is told by mail instead.
            again = http.post("/v1/auth/register", json={"email": email, "password": password})
            assert again.status_code == 202, again.text
            assert (
                http.post("/v1/auth/login", json={"email": email, "password": wrong}).status_code
                == 401
            )
            tokens = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
            tokens = http.post(
                "/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
            ).json()
            seen += [tokens["accessToken"], tokens["refreshToken"]]
            auth = {"Authorization": f"Bearer {tokens['accessToken']}"}

            link = http.post("/v1/links", json={"hospitalId": hospital["id"]}, headers=auth).json()
            seen += [link["code"], link["code"].replace("-", "")]
            hook = f"/v1/hospitals/{hospital['id']}/webhook"
            body = json.dumps(
                {"type": "patient.linked", "data": {"code": link["code"], "patientRef": mrn}}
            ).encode()
            assert (
                http.post(
                    hook, content=body, headers=signed(hospital["webhookSecret"], body)
                ).status_code
                == 200
            )
            body = json.dumps(
                {"type": "records.push", "data": {"patientRef": mrn, "bundle": synthea}}
            ).encode()
            pushed = httpx.post(
                service.url(hook),
                content=body,
                headers=signed(hospital["webhookSecret"], body),
                timeout=120,
            )
            assert pushed.status_code == 200, pushed.text

            own = http.post(
                "/v1/records",
                json={
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "home weight"},
                    "valueQuantity": {"value": float(marker), "unit": "kg"},
                },
                headers=auth,
            )
            assert own.status_code == 201, own.text

            started = http.post(
                "/v1/uploads",
                json={
                    "filename": "scan.dcm",
                    "contentType": "application/dicom",
                    "size": len(DICOM),
                },
                headers=auth,
            ).json()
            put = httpx.put(started["uploadUrl"], content=DICOM, headers=started["headers"])
            assert put.status_code in (200, 204), put.text
            done = http.post(f"/v1/uploads/{started['id']}/complete", headers=auth)
            assert done.status_code == 201, done.text

            items = http.get("/v1/records?limit=50", headers=auth).json()["items"]
            assert http.get(f"/v1/records/{items[0]['id']}", headers=auth).status_code == 200
            assert http.get("/v1/export", headers=auth).status_code == 200
            assert http.get("/v1/audit", headers=auth).status_code == 200

    patient = next(
        e["resource"] for e in synthea["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    values = [
        email,
        email.split("@")[0],
        name,
        password,
        wrong,
        mrn,
        marker,
        patient["name"][0]["family"],
        patient["name"][0]["given"][0],
        patient["birthDate"],
        patient["address"][0]["line"][0],
        next(i["value"] for i in patient["identifier"] if i.get("system", "").endswith("us-ssn")),
        "CompressedSamples",  # the DICOM file's PatientName
        *seen,
    ]
    logs = [service.log_path, *serve_data_dir.rglob("*.log"), *serve_data_dir.rglob("*.log.1")]
    assert any("postgres" in str(p) for p in logs), logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert '"level":"debug"' in text  # the story really ran at DEBUG
    found = {value for value in values if value in text}
    assert not found, f"personal values in the logs: {sorted(found)}"
