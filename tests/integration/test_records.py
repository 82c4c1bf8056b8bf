"""The patient's record through HTTP: timeline, one record, self-reported, export,
deduplication and versions, audit for every look."""

from __future__ import annotations

from uuid import UUID, uuid4

import msgspec
import pytest

from tests.records_support import bundle, grant_hospital, observation, push

PROBLEM = "application/problem+json"


def bp_reading(when: str = "2025-01-02T07:30:00Z") -> dict:
    return observation(
        "ignored",
        code="85354-9",
        display="Blood pressure panel",
        value=128,
        unit="mm[Hg]",
        when=when,
    )


async def audit_actions(client, who) -> list[tuple[str, str]]:
    response = await client.get("/v1/audit?limit=200", headers=who.headers)
    assert response.status_code == 200
    return [(item["action"], item["outcome"]) for item in response.json()["items"]]


async def test_self_reported_record_round_trips_and_is_tagged(client, services, patient):
    response = await client.post("/v1/records", json=bp_reading(), headers=patient.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["selfReported"] is True and created["source"]["kind"] == "self"
    assert any(tag["code"] == "self-reported" for tag in created["resource"]["meta"]["tag"])

    one = await client.get(f"/v1/records/{created['id']}", headers=patient.headers)
    assert one.status_code == 200
    body = one.json()
    assert body["resource"]["valueQuantity"]["value"] == 128
    assert body["display"] == "Blood pressure panel" and body["value"] == "128"

    listed = await client.get("/v1/records", headers=patient.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]


async def test_invalid_resource_is_refused_naming_the_field(client, services, patient):
    bad = bp_reading()
    del bad["status"]
    response = await client.post("/v1/records", json=bad, headers=patient.headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "status" in response.text
    listed = await client.get("/v1/records", headers=patient.headers)
    assert listed.json()["items"] == []


async def test_timeline_is_newest_first_keyset_paginated_and_filterable(client, services, patient):
    hospital = await grant_hospital(services, UUID(patient.id))
    resources = [
        observation(f"obs-{i}", when=f"2024-01-{i + 10:02d}T00:00:00Z", value=60 + i)
        for i in range(7)
    ]
    resources.append(
        observation(
            "glucose",
            code="2339-0",
            display="Glucose",
            when="2023-06-01",
            unit="mg/dL",
            category=[{"coding": [{"code": "laboratory"}]}],
        )
    )
    await push(services, UUID(patient.id), hospital, bundle(*resources))

    seen: list[str] = []
    dates: list[str] = []
    cursor = None
    for _ in range(5):
        url = "/v1/records?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=patient.headers)).json()
        seen += [item["id"] for item in page["items"]]
        dates += [item["date"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 8 and len(set(seen)) == 8
    assert dates == sorted(dates, reverse=True)

    labs = (await client.get("/v1/records?category=laboratory", headers=patient.headers)).json()[
        "items"
    ]
    assert [item["display"] for item in labs] == ["Glucose"]
    window = (
        await client.get("/v1/records?since=2024-01-12&until=2024-01-14", headers=patient.headers)
    ).json()
    assert sorted(item["value"] for item in window["items"]) == ["62", "63"]
    by_text = (await client.get("/v1/records?q=gluc", headers=patient.headers)).json()["items"]
    assert len(by_text) == 1
    by_hospital = (
        await client.get(f"/v1/records?hospitalId={hospital}", headers=patient.headers)
    ).json()
    assert len(by_hospital["items"]) == 8
    other = (await client.get(f"/v1/records?hospitalId={uuid4()}", headers=patient.headers)).json()
    assert other["items"] == []
    by_type = (await client.get("/v1/records?type=Condition", headers=patient.headers)).json()
    assert by_type["items"] == []

    bad_cursor = await client.get("/v1/records?cursor=not-a-cursor", headers=patient.headers)
    assert bad_cursor.status_code == 422 and bad_cursor.headers["content-type"].startswith(PROBLEM)
    bad_date = await client.get("/v1/records?since=yesterday", headers=patient.headers)
    assert bad_date.status_code == 422


async def test_reingesting_the_same_bundle_changes_nothing(client, services, patient):
    hospital = await grant_hospital(services, UUID(patient.id))
    delivery = bundle(observation("hr-1"), observation("hr-2", value=80))
    first = await push(services, UUID(patient.id), hospital, delivery)
    again = await push(services, UUID(patient.id), hospital, delivery)
    assert (first.created, again.created, again.updated, again.unchanged) == (2, 0, 0, 2)
    items = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    assert len(items) == 2
    record = (await client.get(f"/v1/records/{items[0]['id']}", headers=patient.headers)).json()
    assert record["version"] == 1 and record["history"] == []


async def test_newer_version_supersedes_and_history_keeps_the_old(client, services, patient):
    hospital = await grant_hospital(services, UUID(patient.id))
    v1 = observation(
        "hr-1", value=70, meta={"versionId": "1", "lastUpdated": "2024-05-01T09:00:00Z"}
    )
    v2 = observation(
        "hr-1", value=75, meta={"versionId": "2", "lastUpdated": "2024-05-02T09:00:00Z"}
    )
    await push(services, UUID(patient.id), hospital, bundle(v1))
    result = await push(services, UUID(patient.id), hospital, bundle(v2))
    assert result.updated == 1
    items = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    assert len(items) == 1 and items[0]["value"] == "75"
    record = (await client.get(f"/v1/records/{items[0]['id']}", headers=patient.headers)).json()
    assert record["version"] == 2
    assert [h["resource"]["valueQuantity"]["value"] for h in record["history"]] == [70]

    # The older version arriving late does not win.
    late = await push(services, UUID(patient.id), hospital, bundle(v1))
    assert late.stale == 1 and late.updated == 0
    record = (await client.get(f"/v1/records/{items[0]['id']}", headers=patient.headers)).json()
    assert record["value"] == "75" and record["version"] == 2


async def test_an_invalid_entry_rejects_the_whole_bundle_naming_it(client, services, patient):
    from domain.fhir.validation import InvalidFhir

    hospital = await grant_hospital(services, UUID(patient.id))
    broken = observation("bad")
    broken["status"] = "not-a-status"
    with pytest.raises(InvalidFhir) as invalid:
        await push(services, UUID(patient.id), hospital, bundle(observation("good-1"), broken))
    assert "entry 1" in str(invalid.value.detail) and "status" in str(invalid.value.detail)
    assert (await client.get("/v1/records", headers=patient.headers)).json()["items"] == []


async def test_every_read_list_and_export_is_audited(client, services, patient):
    created = (await client.post("/v1/records", json=bp_reading(), headers=patient.headers)).json()
    await client.get(f"/v1/records/{created['id']}", headers=patient.headers)
    await client.get("/v1/records", headers=patient.headers)
    export = await client.get("/v1/export", headers=patient.headers)
    assert export.status_code == 200
    actions = await audit_actions(client, patient)
    for expected in ("record.create", "record.read", "record.list", "export.created"):
        assert (expected if expected != "record.create" else "record.create", "success") in actions


async def test_export_is_a_fhir_collection_bundle_with_everything(client, services, patient):
    hospital = await grant_hospital(services, UUID(patient.id))
    org = {"resourceType": "Organization", "id": "org-1", "name": "St. Elsewhere"}
    await push(
        services, UUID(patient.id), hospital, bundle(observation("a"), observation("b"), org)
    )
    await client.post("/v1/records", json=bp_reading(), headers=patient.headers)
    response = await client.get("/v1/export", headers=patient.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    exported = msgspec.json.decode(response.content)
    assert exported["resourceType"] == "Bundle" and exported["type"] == "collection"
    types = sorted(entry["resource"]["resourceType"] for entry in exported["entry"])
    assert types == ["Observation", "Observation", "Observation", "Organization"]
    assert all(entry["fullUrl"].startswith("urn:uuid:") for entry in exported["entry"])


async def test_revoking_a_data_source_consent_stops_the_next_push(client, services, patient):
    from domain.access import AccessRefused

    hospital = await grant_hospital(services, UUID(patient.id))
    await push(services, UUID(patient.id), hospital, bundle(observation("first")))
    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    assert [c["status"] for c in consents] == ["active"]
    revoked = await client.delete(f"/v1/consents/{consents[0]['id']}", headers=patient.headers)
    assert revoked.status_code == 204
    with pytest.raises(AccessRefused):
        await push(services, UUID(patient.id), hospital, bundle(observation("second")))
    consents = (await client.get("/v1/consents", headers=patient.headers)).json()
    assert [c["status"] for c in consents] == ["revoked"]
    items = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    assert len(items) == 1, "records already received stay the patient's"


async def test_decimals_keep_their_precision_in_and_out(client, services, patient):
    """FHIR decimals carry precision: 1.50 is not 1.5."""
    raw = (
        b'{"resourceType":"Observation","status":"final","code":{"text":"Creatinine"},'
        b'"valueQuantity":{"value":1.50,"unit":"mg/dL"},"effectiveDateTime":"2025-02-01"}'
    )
    created = await client.post(
        "/v1/records", content=raw, headers={**patient.headers, "content-type": "application/json"}
    )
    assert created.status_code == 201, created.text
    assert b'"value":1.50' in created.content and created.json()["value"] == "1.50"
    one = await client.get(f"/v1/records/{created.json()['id']}", headers=patient.headers)
    assert b'"value":1.50' in one.content

    hospital = await grant_hospital(services, UUID(patient.id))

    from domain.fhir import json_codec

    pushed = json_codec.decode(
        b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        b'{"resourceType":"Observation","id":"k-1","status":"final","code":{"text":"Potassium"},'
        b'"valueQuantity":{"value":4.10,"unit":"mmol/L"}}}]}'
    )
    await push(services, UUID(patient.id), hospital, pushed)
    export = await client.get("/v1/export", headers=patient.headers)
    assert b'"value": 4.10' in export.content or b'"value":4.10' in export.content
    assert b"1.50" in export.content


async def test_a_timeline_page_is_audited_with_the_records_it_showed_and_no_more(client, patient):
    for _ in range(3):
        await client.post("/v1/records", json=bp_reading(), headers=patient.headers)
    page = (await client.get("/v1/records?limit=2", headers=patient.headers)).json()
    assert len(page["items"]) == 2 and page["nextCursor"]
    rest = (
        await client.get(
            "/v1/records",
            params={"limit": 2, "cursor": page["nextCursor"]},
            headers=patient.headers,
        )
    ).json()
    assert len(rest["items"]) == 1 and rest["nextCursor"] is None
    history = (await client.get("/v1/audit", headers=patient.headers)).json()["items"]
    lists = [e["resourceIds"] for e in history if e["action"] == "record.list"]
    # Newest first: the second page, then the first.
    assert lists == [[i["id"] for i in rest["items"]], [i["id"] for i in page["items"]]]
