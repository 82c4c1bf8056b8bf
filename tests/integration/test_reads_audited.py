"""Every read of a patient's links, consents and access history goes through the
access policy and leaves a row in the patient's own history, shown here through
GET /v1/audit as the patient sees it."""

from __future__ import annotations

from tests.audit_support import seal_everything
from tests.hospital_support import new_hospital, new_link


async def history(client, patient) -> list[dict]:
    response = await client.get("/v1/audit?limit=200", headers=patient.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def rows(items: list[dict], action: str, outcome: str = "success") -> list[dict]:
    return [i for i in items if i["action"] == action and i["outcome"] == outcome]


async def test_listing_links_is_audited_with_the_links_it_showed(client, settings, patient):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    response = await client.get("/v1/links", headers=patient.headers)
    assert response.status_code == 200 and [item["id"] for item in response.json()] == [link["id"]]
    [row] = rows(await history(client, patient), "link.list")
    assert row["actorType"] == "patient" and row["actorId"] == patient.id
    assert row["resourceType"] == "Consent" and row["resourceIds"] == [link["id"]]


async def test_reading_one_link_is_audited(client, settings, patient):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    response = await client.get(f"/v1/links/{link['id']}", headers=patient.headers)
    assert response.status_code == 200
    [row] = rows(await history(client, patient), "link.read")
    assert row["resourceIds"] == [link["id"]] and row["purpose"] == "PATRQT"


async def test_showing_a_link_code_as_qr_is_audited(client, settings, patient):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    response = await client.get(f"/v1/links/{link['id']}/qr", headers=patient.headers)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    [row] = rows(await history(client, patient), "link.read")
    assert row["resourceIds"] == [link["id"]]


async def test_another_patients_link_is_refused_in_the_callers_history(
    client, settings, patient, other_patient
):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    for path in (f"/v1/links/{link['id']}", f"/v1/links/{link['id']}/qr"):
        response = await client.get(path, headers=other_patient.headers)
        assert response.status_code == 404
    refused = rows(await history(client, other_patient), "link.read", "denied")
    assert [(r["reason"], r["resourceIds"]) for r in refused] == [("not-found", [link["id"]])] * 2
    assert rows(await history(client, patient), "link.read", "denied") == []


async def test_listing_consents_is_audited_with_the_consents_it_showed(client, settings, patient):
    hospital = await new_hospital(client, settings)
    await new_link(client, patient, hospital)
    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    [row] = rows(await history(client, patient), "consent.list")
    assert row["resourceType"] == "Consent"
    assert row["resourceIds"] == [c["id"] for c in consents] and len(consents) == 1


async def test_reading_the_history_is_itself_in_the_history(client, patient):
    first = await history(client, patient)
    assert rows(first, "audit.list") == []  # the row of a look is written after it
    second = await history(client, patient)
    [row] = rows(second, "audit.list")
    assert row["resourceType"] == "AuditEvent"
    assert row["resourceIds"] == [str(item["id"]) for item in first]
    assert row["actorId"] == patient.id


async def test_verifying_the_log_is_in_the_history(client, services, superuser_conn, patient):
    await seal_everything(services, superuser_conn)
    before = (await client.get("/v1/audit/verify", headers=patient.headers)).json()
    assert before["valid"] is True and before["checked"] > 0
    [row] = rows(await history(client, patient), "audit.verified")
    assert row["resourceType"] == "AuditEvent" and row["actorId"] == patient.id
    await seal_everything(services, superuser_conn)
    after = (await client.get("/v1/audit/verify", headers=patient.headers)).json()
    # The earlier check and the look at the history are sealed leaves now.
    assert after["valid"] is True and after["checked"] == before["checked"] + 2
