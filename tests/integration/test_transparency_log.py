"""The audit transparency log through HTTP: events sealed into a signed Merkle
tree, proofs an app checks with its own code, and tampering by someone with
superuser access to the database detected from a checkpoint kept earlier."""

from __future__ import annotations

import asyncio
import base64

import asyncpg
import pytest

from domain.audit.merkle import verify_inclusion
from tests.audit_support import PatientApp, open_note, seal_everything
from tests.integration.test_records import bp_reading


async def activity(client, patient, reads: int = 3) -> str:
    created = (await client.post("/v1/records", json=bp_reading(), headers=patient.headers)).json()
    for _ in range(reads):
        response = await client.get(f"/v1/records/{created['id']}", headers=patient.headers)
        assert response.status_code == 200
    return created["id"]


async def test_events_are_sealed_into_a_checkpoint_signed_with_the_published_key(
    client, services, patient, superuser_conn
):
    await activity(client, patient)
    await seal_everything(services, superuser_conn)

    key = (await client.get("/.well-known/phr-audit-log")).json()
    assert set(key) == {"origin", "verifierKey"}
    assert key["origin"] == "testserver.local/audit-log"
    assert key["verifierKey"].startswith(key["origin"] + "+")
    response = await client.get("/v1/audit/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    size, root = open_note(response.text, key["verifierKey"])  # PyNaCl
    assert size == await superuser_conn.fetchval("SELECT count(*) FROM audit_event")

    items = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
    reads = [i for i in items if i["action"] == "record.read"]
    assert len(reads) == 3 and all(i["leafIndex"] is not None for i in items)
    proof = (await client.get("/v1/audit/proof", headers=patient.headers)).json()
    assert proof["toSize"] == size and proof["consistency"] == []
    by_leaf = {i["leafIndex"]: i for i in proof["inclusions"]}
    for item in items:
        inclusion = by_leaf[item["leafIndex"]]
        assert inclusion["eventId"] == item["id"]
        verify_inclusion(
            item["leafIndex"],
            size,
            base64.b64decode(item["leafHash"]),
            [base64.b64decode(h) for h in inclusion["path"]],
            root,
        )
    # Another patient's events are not in this patient's proofs.
    assert {i["eventId"] for i in proof["inclusions"]} == {i["id"] for i in items}


async def test_a_forged_signature_is_refused_by_the_independent_verifier(client, services):
    key = (await client.get("/.well-known/phr-audit-log")).json()["verifierKey"]
    note = (await client.get("/v1/audit/checkpoint")).text
    origin, size, rest = note.split("\n", 2)
    forged = f"{origin}\n{int(size) + 1}\n{rest}"
    open_note(note, key)
    with pytest.raises(Exception, match="Signature was forged or corrupt"):
        open_note(forged, key)


async def test_an_app_follows_the_log_as_it_grows(client, services, patient, superuser_conn):
    app = PatientApp(client, patient)
    await activity(client, patient)
    await seal_everything(services, superuser_conn)
    await app.visit()
    await activity(client, patient)
    await seal_everything(services, superuser_conn)
    assert await app.check() == []
    verdict = await client.get(
        "/v1/audit/verify", params={"checkpoint": app.kept_note}, headers=patient.headers
    )
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["valid"] is True and verdict.json()["findings"] == []
    assert verdict.json()["checked"] >= 8


async def test_sealing_waits_for_transactions_still_in_flight(
    client, services, patient, superuser_conn, database_dsn
):
    """An event whose transaction started first but commits last is sealed once,
    after it commits; none is skipped or sealed twice."""
    await seal_everything(services, superuser_conn)
    slow = await asyncpg.connect(database_dsn)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute("SET LOCAL ROLE phr_app")
        await slow.execute(
            "INSERT INTO audit_event (patient_id, recorded_at, action, outcome, actor_type,"
            " actor_id, purpose) VALUES ($1::uuid, now(), 'record.read', 'success', 'system',"
            " 'slow', 'HOPERAT')",
            patient.id,
        )
        await activity(client, patient, reads=2)  # commits while the slow one is open
        await services.transparency_log.seal()
        in_flight_sealed = await superuser_conn.fetchval(
            "SELECT count(*) FROM audit_leaf l JOIN audit_event e ON e.id = l.event_id "
            "WHERE e.actor_id = 'slow'"
        )
        assert in_flight_sealed == 0
        await tx.commit()
    finally:
        await slow.close()
    await seal_everything(services, superuser_conn)
    counts = await superuser_conn.fetchrow(
        "SELECT (SELECT count(*) FROM audit_event) AS events,"
        " (SELECT count(*) FROM audit_leaf) AS leaves,"
        " (SELECT count(DISTINCT event_id) FROM audit_leaf) AS distinct_events,"
        " (SELECT max(leaf_index) + 1 FROM audit_leaf) AS size,"
        " (SELECT tree_size FROM audit_sequencer) AS tree_size"
    )
    assert counts["events"] == counts["leaves"] == counts["distinct_events"]
    assert counts["size"] == counts["tree_size"] == counts["leaves"]


async def test_two_sequencers_at_once_leave_one_consistent_tree(
    client, services, patient, superuser_conn
):
    await activity(client, patient, reads=5)
    results = await asyncio.gather(
        services.transparency_log.seal(), services.transparency_log.seal(),
        return_exceptions=True,
    )  # fmt: skip
    assert any(isinstance(r, int) for r in results)
    await seal_everything(services, superuser_conn)
    app = PatientApp(client, patient)
    await app.visit()  # every proof checks out


async def test_erasure_blanks_personal_fields_and_keeps_the_tree(
    client, services, patient, other_patient, superuser_conn
):
    await activity(client, patient)
    await activity(client, other_patient)
    await seal_everything(services, superuser_conn)
    watcher = PatientApp(client, other_patient)
    await watcher.visit()
    leaves_before = await superuser_conn.fetchval("SELECT count(*) FROM audit_leaf")

    response = await client.request(
        "DELETE", "/v1/me", headers=patient.headers, json={"password": patient.password}
    )
    assert response.status_code == 204, response.text
    await seal_everything(services, superuser_conn)
    erased = await superuser_conn.fetch(
        "SELECT user_agent, client_address, erased_at FROM audit_event WHERE patient_id = $1::uuid",
        patient.id,
    )
    assert erased and all(
        r["erased_at"] is not None and r["user_agent"] is None and r["client_address"] is None
        for r in erased
    )
    assert await superuser_conn.fetchval("SELECT count(*) FROM audit_leaf") > leaves_before
    assert await watcher.check() == []
    # Blanking is for erased accounts only: a live patient's history cannot be.
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL ROLE phr_app")
        assert (
            await superuser_conn.fetchval("SELECT audit_erase_patient($1::uuid)", other_patient.id)
            == 0
        )


async def test_proof_sizes_out_of_range_are_problems_not_errors(client, patient):
    for query in ("from=99999999999&to=1", "to=99999999999", "from=-1", "to=9223372036854775807"):
        response = await client.get(f"/v1/audit/proof?{query}", headers=patient.headers)
        assert response.status_code in (400, 404, 422), (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    other = await client.get("/v1/audit/proof")
    assert other.status_code == 401


async def test_inclusion_proofs_come_in_pages_that_add_up_to_the_whole_history(
    client, services, patient, other_patient, superuser_conn
):
    await activity(client, patient, reads=4)
    await activity(client, other_patient, reads=2)
    await seal_everything(services, superuser_conn)
    whole = (await client.get("/v1/audit/proof", headers=patient.headers)).json()
    assert whole["nextAfter"] is None and len(whole["inclusions"]) >= 5

    paged, query = [], {"limit": 2}
    while True:
        page = (await client.get("/v1/audit/proof", params=query, headers=patient.headers)).json()
        assert len(page["inclusions"]) <= 2 and page["checkpoint"] == whole["checkpoint"]
        paged += page["inclusions"]
        if page["nextAfter"] is None:
            break
        assert page["nextAfter"] == page["inclusions"][-1]["leafIndex"]
        query["after"] = page["nextAfter"]
    assert paged == whole["inclusions"]

    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
        response = await client.get("/v1/audit/proof", params=bad, headers=patient.headers)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
