"""Patient B's token against every one of patient A's ids, on every endpoint:
all 404 or empty, nothing of A's leaks, each refusal audited in B's history."""

from __future__ import annotations

from uuid import UUID

from tests.integration.test_records import bp_reading
from tests.records_support import bundle, grant_hospital, observation, push


async def test_other_patient_sees_nothing_of_a_and_each_refusal_is_audited(
    client, services, patient, other_patient
):
    alice, bob = patient, other_patient
    hospital = await grant_hospital(services, UUID(alice.id))
    await push(services, UUID(alice.id), hospital, bundle(observation("alice-hr", value=99)))
    own = (await client.post("/v1/records", json=bp_reading(), headers=alice.headers)).json()
    alice_records = [
        item["id"]
        for item in (await client.get("/v1/records", headers=alice.headers)).json()["items"]
    ]
    alice_consents = [
        c["id"] for c in (await client.get("/v1/consents", headers=alice.headers)).json()
    ]
    assert own["id"] in alice_records and len(alice_consents) == 1

    probes = [("GET", f"/v1/records/{rid}") for rid in alice_records]
    probes += [("DELETE", f"/v1/consents/{cid}") for cid in alice_consents]
    for method, url in probes:
        response = await client.request(method, url, headers=bob.headers)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "alice" not in response.text and "99" not in response.text

    # Collections answer empty for B.
    assert (await client.get("/v1/records", headers=bob.headers)).json()["items"] == []
    assert (await client.get(f"/v1/records?hospitalId={hospital}", headers=bob.headers)).json()[
        "items"
    ] == []
    assert (await client.get("/v1/consents", headers=bob.headers)).json() == []
    export = (await client.get("/v1/export", headers=bob.headers)).json()
    assert export["entry"] == []
    bob_audit = (await client.get("/v1/audit?limit=200", headers=bob.headers)).json()["items"]
    assert all(alice.id != item["actorId"] for item in bob_audit)

    # A's consent is untouched; every refusal is in B's audit history.
    assert [
        c["status"] for c in (await client.get("/v1/consents", headers=alice.headers)).json()
    ] == ["active"]
    denied = [(i["action"], tuple(i["resourceIds"])) for i in bob_audit if i["outcome"] == "denied"]
    for rid in alice_records:
        assert ("record.read", (rid,)) in denied
    for cid in alice_consents:
        assert ("consent.revoked", (cid,)) in denied


async def test_requests_without_a_valid_token_are_refused(client, services, patient):
    for method, url in [
        ("GET", "/v1/records"),
        ("GET", "/v1/export"),
        ("GET", "/v1/consents"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/audit/verify"),
        ("POST", "/v1/records"),
    ]:
        response = await client.request(
            method, url, headers={"Authorization": "Bearer not-a-token"}
        )
        assert response.status_code == 401, (method, url)
        assert response.headers["content-type"].startswith("application/problem+json")
