"""A hospital, end to end: the operator adds it with the CLI, the patient makes a
link code, the hospital (signing with the independent `standardwebhooks` package)
confirms the link and pushes a real Synthea patient bundle (556 entries); the
patient's timeline shows every non-supporting entry; a redelivery changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from domain.fhir.bundle import parse_bundle
from tests.e2e.service import REPO_ROOT, running_service, service_env
from tests.hospital_support import Hospital
from tests.webhook_signing import signed_headers

SYNTHEA = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "fhir"
    / "synthea"
    / "synthea-patient-bundle.json"
)


def phr(args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def timeline(client, patient) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(100):  # bounded: 549 records at 200 a page is 3 pages
        url = "/v1/records?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = await client.get(url, headers=patient.headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            return items
    raise AssertionError("the timeline did not end")


async def test_operator_patient_and_hospital_end_to_end(client, settings, patient, superuser_conn):
    # The operator: `phr hospital add` against the same database and data folder,
    # with the run's secrets key (it seals webhook secrets and signing keys).
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PHR_")},
        "DATABASE_URL": settings.database_url,
        "PHR_DATA_DIR": str(settings.data_dir),
        "PHR_SECRETS_KEY": os.environ["PHR_SECRETS_KEY"],
    }
    created = phr(["hospital", "add", "--name", "Synthea General"], env)
    assert set(created) == {"id", "name", "webhookSecret"} and created["webhookSecret"].startswith(
        "whsec_"
    )
    hospital = Hospital(client, created["id"], created["webhookSecret"])

    # The patient asks for a code and shows it at the hospital.
    link = (
        await client.post("/v1/links", json={"hospitalId": hospital.id}, headers=patient.headers)
    ).json()

    # The hospital's system, signing as any Standard Webhooks sender would.
    def signed(body: bytes, msg_id: str) -> dict[str, str]:
        return signed_headers(created["webhookSecret"], body, msg_id=msg_id)

    linked_body = json.dumps(
        {"type": "patient.linked", "data": {"code": link["code"], "patientRef": "SYN-1"}}
    ).encode()
    response = await client.post(
        hospital.url, content=linked_body, headers=signed(linked_body, "msg_link")
    )
    assert response.status_code == 200, response.text

    bundle = json.loads(SYNTHEA.read_text())
    assert bundle["type"] == "transaction" and len(bundle["entry"]) > 500
    expected = [e for e in parse_bundle(bundle) if not e.is_supporting]
    push_body = json.dumps(
        {"type": "records.push", "data": {"patientRef": "SYN-1", "bundle": bundle}}
    ).encode()
    response = await client.post(
        hospital.url, content=push_body, headers=signed(push_body, "msg_push")
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["created"] == len(bundle["entry"]) and result["updated"] == result["stale"] == 0

    items = await timeline(client, patient)
    assert len(items) == len(expected) == 549
    assert len({item["id"] for item in items}) == len(items)
    assert sorted(item["type"] for item in items) == sorted(
        e.fields.resource_type for e in expected
    )
    source = {"kind": "hospital", "hospitalId": hospital.id, "hospitalName": "Synthea General"}
    assert all(item["source"] == source for item in items)
    stored = await superuser_conn.fetchval(
        "SELECT count(*) FROM record WHERE patient_id = $1::uuid", patient.id
    )
    assert stored == len(bundle["entry"])

    # A redelivery (same id, same body) is answered as before and changes nothing;
    # the same bundle under a new id is all "unchanged".
    again = await client.post(
        hospital.url, content=push_body, headers=signed(push_body, "msg_push")
    )
    assert (again.status_code, again.json()) == (200, result)
    fresh = await client.post(
        hospital.url, content=push_body, headers=signed(push_body, "msg_push_2")
    )
    assert fresh.json() == {
        "created": 0,
        "updated": 0,
        "unchanged": len(bundle["entry"]),
        "stale": 0,
    }
    assert len(await timeline(client, patient)) == 549
    assert (
        await superuser_conn.fetchval(
            "SELECT count(*) FROM record_version WHERE patient_id = $1::uuid", patient.id
        )
        == 0
    )

    audit = (await client.get("/v1/audit?limit=200", headers=patient.headers)).json()["items"]
    by_hospital = {(e["action"], e["outcome"]) for e in audit if e.get("actorType") == "hospital"}
    assert {("link.completed", "success"), ("record.ingest", "success")} <= by_hospital
    verified = await client.get("/v1/audit/verify", headers=patient.headers)
    assert verified.status_code == 200 and verified.json()["valid"] is True

    # The operator rotates the secret; both verify during the grace period.
    rotated = phr(["hospital", "rotate-secret", hospital.id, "--grace-hours", "1"], env)
    assert rotated["webhookSecret"] != created["webhookSecret"]
    for secret in (created["webhookSecret"], rotated["webhookSecret"]):
        body = json.dumps(
            {"type": "patient.linked", "data": {"code": "0000-0000", "patientRef": "X"}}
        ).encode()
        headers = Hospital(client, hospital.id, secret).sign(body)
        assert (await client.post(hospital.url, content=body, headers=headers)).status_code == 422


def test_cli_refuses_a_database_with_pending_migrations(admin_dsn, tmp_path):
    import asyncio

    import asyncpg

    from tests.conftest import with_database

    name = f"phr_unmigrated_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PHR_")},
            "DATABASE_URL": with_database(admin_dsn, name),
            "PHR_DATA_DIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", "hospital", "add", "--name", "Too Early"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1 and "phr migrate" in done.stderr and done.stdout == ""
    finally:
        asyncio.run(drop())


def test_hospital_commands_work_beside_a_running_serve_on_the_embedded_default(serve_data_dir):
    with running_service(serve_data_dir) as service:
        env = service_env(serve_data_dir, 0)
        created = phr(["hospital", "add", "--name", "Beside Serve"], env)
        body = json.dumps(
            {"type": "patient.linked", "data": {"code": "0000-0000", "patientRef": "X"}}
        ).encode()
        headers = signed_headers(created["webhookSecret"], body, msg_id="msg_beside")
        # The server verifies the secret the CLI made (same database, same key file):
        # the code is wrong (422), not the signature (401).
        response = httpx.post(
            service.url(f"/v1/hospitals/{created['id']}/webhook"), content=body, headers=headers
        )
        assert response.status_code == 422, response.text
        rotated = phr(["hospital", "rotate-secret", created["id"]], env)
        assert rotated["webhookSecret"].startswith("whsec_")
        assert service.process.poll() is None
