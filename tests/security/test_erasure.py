"""Item: erasure left health data behind.

Before: after `DELETE /v1/me`, a hospital that kept pushing for the erased
patient's MRN got its bundles parked indefinitely (health data stored for nobody),
and a still-valid upload URL could put a file back. Now erasure records a tombstone
per (hospital, patientRef): later pushes get 410 and are never stored, parked pushes
for those refs are deleted; the local store refuses writes under the erased
account's folder, and a second sweep (once every earlier upload URL has expired)
empties the folder again on S3, where a presigned PUT cannot be revoked.

The main test fills every table and the blob store for a patient, erases them, and
then reads every table and lists the whole store: nothing of the patient remains
but pseudonymised audit entries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from domain.clock import FixedClock
from infra.bootstrap import close_services, open_services
from tests.conftest import register_patient, settings_for
from tests.hospital_support import linked, new_hospital
from tests.integration.test_uploads import (  # noqa: F401 - `stack` is a fixture
    PDF,
    Stack,
    complete,
    put_file,
    stack,
    start,
)
from tests.records_support import bundle, observation
from tests.security.support import assert_problem

# Tables that keep an erased patient's pseudonymised audit trail by design.
AUDIT_TABLES = {"audit_event", "audit_chain_head"}


def store_settings(opened: Stack, settings):
    """The settings of the stack under test (its blob store), for the sweeper."""
    return settings_for(
        settings.database_url, settings.data_dir, opened.s3.env() if opened.s3 else None
    )


def every_stored_key(opened: Stack, data_dir: Path) -> list[str]:
    if opened.s3 is None:
        root = data_dir / "files"
        return [str(p.relative_to(root)) for p in root.rglob("*")] if root.exists() else []
    s3 = boto3.client(
        "s3",
        endpoint_url=opened.s3.endpoint_url,
        region_name=opened.s3.region,
        aws_access_key_id=opened.s3.access_key_id,
        aws_secret_access_key=opened.s3.secret_access_key,
    )
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=opened.s3.bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


async def every_row(conn) -> dict[str, list[str]]:
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    rows = {}
    for table in tables:
        name = table["table_name"]
        rows[name] = [
            r["row"]
            for r in await conn.fetch(f'SELECT row_to_json(t)::text AS row FROM "{name}" t')
        ]
    return rows


async def test_erased_patient_with_data_everywhere__only_pseudonymised_audit_entries_remain(
    stack: Stack,  # noqa: F811
    settings,
    superuser_conn,
):
    client = stack.client
    marker = f"marker-{uuid.uuid4().hex}"
    mrn = f"MRN-{uuid.uuid4().hex[:10]}"
    name = f"Ada {uuid.uuid4().hex[:8]} Lovelace"
    patient = await register_patient(client, display_name=name)
    await client.post("/v1/auth/login", json={"email": patient.email, "password": "wrong one!"})
    hospital = await new_hospital(client, settings)
    await linked(client, patient, hospital, mrn)
    # Values no other test's patient has: the database is shared by the run.
    first, second = (f"{n}.{uuid.uuid4().int % 10**6:06d}1" for n in (71, 72))
    pushed = await hospital.push(mrn, bundle(observation(f"obs-{marker}", value=float(first))))
    assert pushed.status_code == 200, pushed.text
    updated = await hospital.push(mrn, bundle(observation(f"obs-{marker}", value=float(second))))
    assert updated.status_code == 200, updated.text
    own = await client.post(
        "/v1/records",
        json={"resourceType": "Observation", "status": "final", "code": {"text": marker}},
        headers=patient.headers,
    )
    assert own.status_code == 201, own.text
    done = await put_file(stack, patient, f"{marker}.pdf", "application/pdf", PDF)
    assert (await complete(stack, patient, done["id"])).status_code == 201
    # An upload URL still open when the account is erased.
    pending = (await start(stack, patient, "later.pdf", "application/pdf", len(PDF))).json()
    before = await every_row(superuser_conn)
    holding = {t for t, rows in before.items() if any(patient.id in r for r in rows)}
    assert holding >= {
        "patient",
        "consent",
        "hospital_link",
        "record",
        "record_version",
        "upload",
        "refresh_token",
        "refresh_token_family",
        "audit_event",
    }, holding
    assert any(patient.id in key for key in every_stored_key(stack, settings.data_dir))

    erased = await client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert erased.status_code == 204, erased.text

    # A hospital that keeps pushing: 410, nothing stored or parked.
    later = await hospital.push(mrn, bundle(observation(f"obs-later-{marker}")))
    assert_problem(later, 410, "patient-erased")
    # The open upload URL: refused by phr's disk store; on S3 it lands, and the
    # second sweep (due once every earlier URL has expired) removes it.
    put = await stack.http.request(
        pending["method"], pending["uploadUrl"], headers=pending["headers"], content=PDF
    )
    if stack.kind == "local":
        assert put.status_code == 403, put.text
    sweeper = await open_services(
        store_settings(stack, settings),
        settings.database_url,
        clock=FixedClock(datetime.now(UTC) + timedelta(minutes=17)),
    )
    try:
        assert await sweeper.account_erasure.sweep_erased_files() >= 1
    finally:
        await close_services(sweeper)

    secrets_ = [patient.email, mrn, marker, name, patient.password, first, second]
    for table, rows in (await every_row(superuser_conn)).items():
        for row in rows:
            for secret in secrets_:
                assert secret not in row, (table, secret, row)
            if table not in AUDIT_TABLES:
                assert patient.id not in row, (table, row)
    audit = await superuser_conn.fetch(
        "SELECT action FROM audit_event WHERE patient_id = $1::uuid", patient.id
    )
    assert "account.erased" in {r["action"] for r in audit}
    assert [k for k in every_stored_key(stack, settings.data_dir) if patient.id in k] == []


async def test_parked_push_for_an_erased_patients_ref__deleted_at_erasure(
    client, settings, superuser_conn
):
    """A push parked under the patient's ref (arrived in a window with no live
    link) goes with the erasure, and later ones are refused."""
    patient = await register_patient(client)
    hospital = await new_hospital(client, settings)
    await linked(client, patient, hospital, "MRN-PARK")
    await superuser_conn.execute(
        "INSERT INTO webhook_parked_push (hospital_id, patient_ref, delivery_id, bundle, received_at) "
        "VALUES ($1::uuid, 'MRN-PARK', 'msg_parked', $2::jsonb, now())",
        hospital.id,
        json.dumps(bundle(observation("parked-1"))),
    )
    erased = await client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert erased.status_code == 204, erased.text
    assert (
        await superuser_conn.fetchval(
            "SELECT count(*) FROM webhook_parked_push WHERE patient_ref = 'MRN-PARK'"
        )
        == 0
    )
    assert_problem(await hospital.push("MRN-PARK", bundle(observation("after"))), 410)


async def test_a_new_patient_linking_under_an_erased_ref__receives_pushes_again(client, settings):
    first = await register_patient(client)
    hospital = await new_hospital(client, settings)
    await linked(client, first, hospital, "MRN-REUSE")
    erased = await client.request(
        "DELETE", "/v1/me", json={"password": first.password}, headers=first.headers
    )
    assert erased.status_code == 204, erased.text
    assert (await hospital.push("MRN-REUSE", bundle(observation("x")))).status_code == 410
    second = await register_patient(client)
    await linked(client, second, hospital, "MRN-REUSE")
    assert (await hospital.push("MRN-REUSE", bundle(observation("y")))).status_code == 200


def test_erased_ref_tombstones_are_keyed_digests():
    from domain.erasure_traces import erased_ref_digest

    hospital = uuid.uuid4()
    digest = erased_ref_digest(b"k" * 32, hospital, "MRN-1")
    assert len(digest) == 32 and b"MRN-1" not in digest
    assert digest != erased_ref_digest(b"j" * 32, hospital, "MRN-1")
