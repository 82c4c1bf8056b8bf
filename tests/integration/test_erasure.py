"""DELETE /v1/me erases the account and its data; the audit trail stays."""

from __future__ import annotations

from uuid import UUID

from tests.integration.test_records import bp_reading
from tests.records_support import bundle, grant_hospital, observation, push


async def test_erasure_removes_everything_but_the_pseudonymised_audit_trail(
    client, services, patient, other_patient, superuser_conn
):
    hospital = await grant_hospital(services, UUID(patient.id))
    await push(services, UUID(patient.id), hospital, bundle(observation("hr-1")))
    await client.post("/v1/records", json=bp_reading(), headers=patient.headers)
    await client.post("/v1/records", json=bp_reading(), headers=other_patient.headers)
    file_key = f"patients/{patient.id}/uploads/test-file"
    put = await services.blobs.presign_put(
        file_key,
        content_type="application/pdf",
        size=5,
        expires_in=__import__("datetime").timedelta(minutes=5),
    )
    uploaded = await client.put(
        put.url.removeprefix("http://testserver.local"), content=b"%PDF-", headers=put.headers
    )
    assert uploaded.status_code in (200, 201, 204), uploaded.text
    assert await services.blobs.stat(file_key) is not None

    response = await client.request(
        "DELETE", "/v1/me", json={"password": patient.password}, headers=patient.headers
    )
    assert response.status_code == 204

    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 401
    login = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert login.status_code == 401
    for table in ("record", "record_version", "consent"):
        count = await superuser_conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE patient_id = $1::uuid", patient.id
        )
        assert count == 0, table
    assert await services.blobs.stat(file_key) is None

    audit = await superuser_conn.fetch(
        "SELECT action, actor_id FROM audit_event WHERE patient_id = $1::uuid", patient.id
    )
    assert ("account.erased", patient.id) in [(r["action"], r["actor_id"]) for r in audit]
    leaked = await superuser_conn.fetchval(
        "SELECT count(*) FROM audit_event WHERE coalesce(actor_id, '') || array_to_string(resource_ids, ',') LIKE $1",
        f"%{patient.email}%",
    )
    assert leaked == 0

    # The other patient is untouched.
    assert (
        len((await client.get("/v1/records", headers=other_patient.headers)).json()["items"]) == 1
    )
