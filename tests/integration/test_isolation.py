"""Patient B's token against every one of patient A's ids, on every endpoint:
all 404 or empty, nothing of A's leaks, each refusal audited in B's history."""

from __future__ import annotations

import uuid
from uuid import UUID

from tests.hospital_support import linked, new_hospital, new_link
from tests.integration.test_records import bp_reading
from tests.records_support import bundle, grant_hospital, observation, push

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def alice_upload(client, alice) -> tuple[str, str]:
    """A finished upload of A's: (upload id, record id)."""
    started = await client.post(
        "/v1/uploads",
        json={"filename": "letter.pdf", "contentType": "application/pdf", "size": len(PDF)},
        headers=alice.headers,
    )
    assert started.status_code == 201, started.text
    upload = started.json()
    put = await client.put(
        upload["uploadUrl"].removeprefix("http://testserver.local"),
        content=PDF,
        headers=upload["headers"],
    )
    assert put.status_code in (200, 204), put.text
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=alice.headers)
    assert done.status_code == 201, done.text
    return upload["id"], done.json()["id"]


async def test_other_patient_sees_nothing_of_a_and_each_refusal_is_audited(
    client, services, settings, patient, other_patient
):
    alice, bob = patient, other_patient
    hospital = await grant_hospital(services, UUID(alice.id))
    await push(services, UUID(alice.id), hospital, bundle(observation("alice-hr", value=99)))
    own = (await client.post("/v1/records", json=bp_reading(), headers=alice.headers)).json()
    st_elsewhere = await new_hospital(client, settings)
    linked_link = await linked(client, alice, st_elsewhere, "MRN-ALICE")
    pending_link = await new_link(
        client, alice, await new_hospital(client, settings, name="General")
    )
    upload_id, upload_record = await alice_upload(client, alice)

    alice_records = [
        i["id"]
        for i in (await client.get("/v1/records?limit=200", headers=alice.headers)).json()["items"]
    ]
    alice_consents = [
        c["id"] for c in (await client.get("/v1/consents", headers=alice.headers)).json()
    ]
    assert (
        own["id"] in alice_records and upload_record in alice_records and len(alice_consents) == 3
    )

    probes = [("GET", f"/v1/records/{rid}") for rid in alice_records]
    probes += [("GET", f"/v1/records/{upload_record}/content")]
    probes += [("POST", f"/v1/uploads/{upload_id}/complete")]
    for link in (linked_link, pending_link):
        probes += [("GET", f"/v1/links/{link['id']}"), ("GET", f"/v1/links/{link['id']}/qr")]
        probes += [("DELETE", f"/v1/links/{link['id']}")]
    probes += [("DELETE", f"/v1/consents/{cid}") for cid in alice_consents]
    for method, url in probes:
        response = await client.request(method, url, headers=bob.headers, follow_redirects=False)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        for secret in ("alice", "99", "MRN-ALICE", pending_link["code"], "letter.pdf"):
            assert secret not in response.text, (method, url, secret)

    # Collections answer empty for B.
    assert (await client.get("/v1/records", headers=bob.headers)).json()["items"] == []
    assert (await client.get(f"/v1/records?hospitalId={hospital}", headers=bob.headers)).json()[
        "items"
    ] == []
    assert (await client.get("/v1/consents", headers=bob.headers)).json() == []
    assert (await client.get("/v1/imaging", headers=bob.headers)).json() == []
    links = (await client.get("/v1/links", headers=bob.headers)).json()
    assert (links["items"] if isinstance(links, dict) else links) == []
    assert (await client.get("/v1/export", headers=bob.headers)).json()["entry"] == []
    bob_audit = (await client.get("/v1/audit?limit=200", headers=bob.headers)).json()["items"]
    assert all(alice.id != item["actorId"] for item in bob_audit)

    # A's things are untouched; every refusal of a record or consent is in B's history.
    assert [
        c["status"] for c in (await client.get("/v1/consents", headers=alice.headers)).json()
    ] == ["active"] * 3
    own_content = await client.get(
        f"/v1/records/{upload_record}/content", headers=alice.headers, follow_redirects=False
    )
    assert own_content.status_code == 302
    denied = [(i["action"], tuple(i["resourceIds"])) for i in bob_audit if i["outcome"] == "denied"]
    for rid in alice_records:
        assert ("record.read", (rid,)) in denied
    for cid in alice_consents:
        assert ("consent.revoked", (cid,)) in denied
    # ...and so is every other probe: the file, the upload and six link probes.
    assert len(denied) >= len(alice_records) + len(alice_consents) + 8


async def test_requests_without_a_valid_token_are_refused(client, patient):
    for method, url in [
        ("GET", "/v1/records"),
        ("GET", "/v1/export"),
        ("GET", "/v1/consents"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/audit/verify"),
        ("POST", "/v1/records"),
        ("GET", "/v1/imaging"),
        ("GET", "/v1/links"),
        ("POST", "/v1/uploads"),
        ("DELETE", "/v1/me"),
        ("PATCH", "/v1/me"),
        ("POST", "/v1/me/password"),
        ("POST", "/v1/me/email"),
        ("POST", "/v1/me/email/confirm"),
        ("GET", "/v1/me/sessions"),
        ("DELETE", "/v1/me/sessions"),
        ("DELETE", f"/v1/me/sessions/{uuid.uuid4()}"),
        ("GET", "/v1/hospitals"),
    ]:
        response = await client.request(
            method, url, headers={"Authorization": "Bearer not-a-token"}
        )
        assert response.status_code == 401, (method, url)
        assert response.headers["content-type"].startswith("application/problem+json")
