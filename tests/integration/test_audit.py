"""The audit log: append-only for the application, paginated, own events only
(the transparency log over it: test_transparency_log.py)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from tests.integration.test_records import bp_reading
from tests.records_support import bundle, grant_hospital, observation, push


async def test_application_role_cannot_update_or_delete_audit_rows(patient, superuser_conn):
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL ROLE phr_app")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser_conn.execute(
                "UPDATE audit_event SET action = 'x' WHERE patient_id = $1::uuid", patient.id
            )
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL ROLE phr_app")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser_conn.execute(
                "DELETE FROM audit_event WHERE patient_id = $1::uuid", patient.id
            )


async def test_trigger_refuses_update_and_delete_even_for_the_owner(patient, superuser_conn):
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await superuser_conn.execute(
            "UPDATE audit_event SET action = 'x' WHERE patient_id = $1::uuid", patient.id
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await superuser_conn.execute(
            "DELETE FROM audit_event WHERE patient_id = $1::uuid", patient.id
        )


async def test_a_failed_audit_insert_makes_the_read_fail(client, patient, superuser_conn):
    created = (await client.post("/v1/records", json=bp_reading(), headers=patient.headers)).json()
    await superuser_conn.execute("REVOKE INSERT ON audit_event FROM phr_app")
    try:
        response = await client.get(f"/v1/records/{created['id']}", headers=patient.headers)
    finally:
        await superuser_conn.execute("GRANT INSERT ON audit_event TO phr_app")
    assert response.status_code == 500
    assert "resource" not in response.json()
    assert "128" not in response.text


async def test_audit_list_is_keyset_paginated_and_own_only(client, patient, other_patient):
    for _ in range(3):
        await client.get("/v1/records", headers=patient.headers)
    first = (await client.get("/v1/audit?limit=2", headers=patient.headers)).json()
    assert len(first["items"]) == 2 and first["nextCursor"]
    second = (
        await client.get(f"/v1/audit?limit=2&cursor={first['nextCursor']}", headers=patient.headers)
    ).json()
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    others = (await client.get("/v1/audit?limit=200", headers=other_patient.headers)).json()[
        "items"
    ]
    assert all(item["actorId"] != patient.id for item in others)


async def test_a_full_timeline_pages_audit_row_is_stored_inline(
    client, services, patient, superuser_conn
):
    """A page of 50 lists 50 ids in its audit row: about 1.9 KB of random text that
    does not compress, past PostgreSQL's default 2 KB toast threshold for the row.
    It stays in the table's own pages instead of costing every page read a write to
    the TOAST table and its index (migration 0075)."""
    hospital = await grant_hospital(services, UUID(patient.id))
    readings = [observation(f"hr-{i}", value=60 + i) for i in range(60)]
    await push(services, UUID(patient.id), hospital, bundle(*readings))
    toast = await superuser_conn.fetchval(
        "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'audit_event'::regclass"
    )
    chunks = f"SELECT count(*) FROM {toast}"
    before = await superuser_conn.fetchval(chunks)

    page = await client.get("/v1/records?limit=50", headers=patient.headers)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 50 and page.json()["nextCursor"]
    listed = await superuser_conn.fetchval(
        "SELECT cardinality(resource_ids) FROM audit_event "
        "WHERE patient_id = $1::uuid AND action = 'record.list' ORDER BY id DESC LIMIT 1",
        patient.id,
    )
    assert listed == 50
    assert await superuser_conn.fetchval(chunks) == before
