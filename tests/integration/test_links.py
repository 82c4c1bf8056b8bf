"""Linking a hospital: the patient's code, its consent and audit, the list, the
QR, revocation, and another patient's link looking like nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from tests.hospital_support import linked, new_hospital, new_link

PROBLEM = "application/problem+json"
CODE = re.compile(r"^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}$")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_link_code_records_consent_and_audit(client, settings, patient):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    assert set(link) == {"id", "hospitalId", "hospitalName", "code", "expiresAt", "status"}
    assert link["hospitalName"] == "St. Elsewhere"
    assert (
        CODE.match(link["code"])
        and link["status"] == "pending"
        and link["hospitalId"] == hospital.id
    )
    lifetime = when(link["expiresAt"]) - datetime.now(when(link["expiresAt"]).tzinfo)
    assert timedelta(hours=23, minutes=59) < lifetime <= timedelta(hours=24)

    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    assert [(c["kind"], c["granteeType"], c["granteeId"], c["status"]) for c in consents] == [
        ("data-source", "hospital", hospital.id, "active")
    ]
    audit = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
    assert ("link.created", "success") in [(e["action"], e["outcome"]) for e in audit]


async def test_an_unknown_hospital_is_404_and_leaves_no_consent(client, patient):
    response = await client.post(
        "/v1/links",
        json={"hospitalId": "00000000-0000-4000-8000-000000000000"},
        headers=patient.headers,
    )
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
    assert (await client.get("/v1/consents", headers=patient.headers)).json() == []


async def test_bad_requests_are_refused(client, patient):
    assert (await client.post("/v1/links", json={}, headers=patient.headers)).status_code == 400
    extra = await client.post(
        "/v1/links", json={"hospitalId": "x", "more": 1}, headers=patient.headers
    )
    assert extra.status_code == 400
    assert (
        await client.post("/v1/links", json={"hospitalId": "00000000-0000-4000-8000-000000000000"})
    ).status_code == 401


async def test_codes_are_stored_only_as_digest_and_sealed(
    client, settings, patient, superuser_conn
):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    row = await superuser_conn.fetchrow(
        "SELECT code_digest, code_sealed FROM hospital_link WHERE id = $1::uuid", link["id"]
    )
    plain = link["code"].replace("-", "").encode()
    assert plain not in bytes(row["code_digest"]) and plain not in bytes(row["code_sealed"])
    secrets = await superuser_conn.fetch(
        "SELECT sealed FROM hospital_secret WHERE hospital_id = $1::uuid", hospital.id
    )
    raw = hospital.secret.removeprefix("whsec_").encode()
    assert len(secrets) == 1 and raw not in bytes(secrets[0]["sealed"])
    import base64

    assert base64.b64decode(raw) not in bytes(secrets[0]["sealed"])


async def test_list_shows_each_status_and_the_qr_is_a_png(client, settings, patient):
    hospital = await new_hospital(client, settings)
    pending = await new_link(client, patient, hospital)
    done = await linked(client, patient, hospital, "MRN-42")
    revoked = await new_link(client, patient, hospital)
    assert (
        await client.delete(f"/v1/links/{revoked['id']}", headers=patient.headers)
    ).status_code == 204

    listed = (await client.get("/v1/links", headers=patient.headers)).json()
    status = {item["id"]: item["status"] for item in listed}
    assert status == {pending["id"]: "pending", done["id"]: "linked", revoked["id"]: "revoked"}
    one = (await client.get(f"/v1/links/{done['id']}", headers=patient.headers)).json()
    assert one["patientRef"] == "MRN-42" and one["linkedAt"]

    qr = await client.get(f"/v1/links/{pending['id']}/qr", headers=patient.headers)
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    assert qr.content.startswith(b"\x89PNG\r\n\x1a\n") and len(qr.content) > 100
    # The same bytes for a client that asks for octet-stream (as generated clients do).
    raw = await client.get(
        f"/v1/links/{pending['id']}/qr",
        headers={**patient.headers, "Accept": "application/octet-stream"},
    )
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.content.startswith(b"\x89PNG\r\n\x1a\n")
    # A used code is gone: there is nothing left to show.
    used = await client.get(f"/v1/links/{done['id']}/qr", headers=patient.headers)
    assert used.status_code == 409 and used.headers["content-type"].startswith(PROBLEM)


async def test_another_patients_link_is_404_everywhere(client, settings, patient, other_patient):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    for method, path in [
        ("GET", f"/v1/links/{link['id']}"),
        ("GET", f"/v1/links/{link['id']}/qr"),
        ("DELETE", f"/v1/links/{link['id']}"),
    ]:
        response = await client.request(method, path, headers=other_patient.headers)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"].startswith(PROBLEM)
    assert (await client.get("/v1/links", headers=other_patient.headers)).json() == []
    still = (await client.get(f"/v1/links/{link['id']}", headers=patient.headers)).json()
    assert still["status"] == "pending"


async def test_revoking_a_link_revokes_its_consent_and_twice_is_fine(client, settings, patient):
    hospital = await new_hospital(client, settings)
    link = await linked(client, patient, hospital, "MRN-7")
    assert (
        await client.delete(f"/v1/links/{link['id']}", headers=patient.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/v1/links/{link['id']}", headers=patient.headers)
    ).status_code == 204
    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    assert [c["status"] for c in consents] == ["revoked"]
    audit = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
    assert [e["action"] for e in audit].count("link.revoked") == 1


async def test_revoking_the_consent_directly_revokes_the_link(client, settings, patient):
    hospital = await new_hospital(client, settings)
    link = await new_link(client, patient, hospital)
    consent = (await client.get("/v1/consents", headers=patient.headers)).json()[0]
    assert (
        await client.delete(f"/v1/consents/{consent['id']}", headers=patient.headers)
    ).status_code == 204
    one = (await client.get(f"/v1/links/{link['id']}", headers=patient.headers)).json()
    assert one["status"] == "revoked"
