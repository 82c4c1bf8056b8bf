"""Real FHIR data that nobody here wrote, ingested and read back through the API."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import msgspec

from domain.fhir.catalogue import PATIENT_COMPARTMENT_TYPES, SUPPORTING_TYPES
from tests.fhir_examples import (
    VALIDATED_TYPES,
    hl7_example,
    hl7_example_names,
    ips_bundle,
    synthea_bundle,
)
from tests.records_support import grant_hospital, push

EXACT_NUMBERS = msgspec.json.Decoder(float_hook=Decimal)


def _examples() -> list[dict]:
    resources = []
    for resource_type in VALIDATED_TYPES:
        for name in hl7_example_names(resource_type):
            resources.append(hl7_example(name))
    return resources


async def _all_records(client, patient) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        url = "/v1/records?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=patient.headers)).json()
        items += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            return items
    raise AssertionError("timeline did not end")


async def test_hl7_examples_come_back_unchanged(client, services, patient):
    examples = _examples()
    assert len(examples) >= 24
    hospital = await grant_hospital(services, UUID(patient.id))
    delivery = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{uuid4()}", "resource": r} for r in examples],
    }
    result = await push(services, UUID(patient.id), hospital, delivery)
    assert result.created == len(examples)

    items = await _all_records(client, patient)
    assert len(items) == len(examples)
    by_source = {}
    for item in items:
        response = await client.get(f"/v1/records/{item['id']}", headers=patient.headers)
        record = EXACT_NUMBERS.decode(response.content)
        by_source[(record["type"], record["sourceResourceId"])] = record["resource"]
    for original in examples:
        stored = by_source[(original["resourceType"], original["id"])]
        # Numbers compare by value: JSONB keeps 1.0E+245 as a plain numeral.
        exact = EXACT_NUMBERS.decode(msgspec.json.encode(original))
        assert stored == exact, (original["resourceType"], original["id"])


async def test_a_synthea_patient_and_an_ips_document_are_read_back(client, services, patient):
    hospital = await grant_hospital(services, UUID(patient.id))
    synthea = synthea_bundle()
    result = await push(services, UUID(patient.id), hospital, synthea)
    clinical = [
        e
        for e in synthea["entry"]
        if e["resource"]["resourceType"] in PATIENT_COMPARTMENT_TYPES
        and e["resource"]["resourceType"] not in SUPPORTING_TYPES | {"Patient"}
    ]
    assert result.created == len(synthea["entry"])
    items = await _all_records(client, patient)
    assert len(items) == len(clinical)
    assert {i["type"] for i in items} >= {"Encounter", "Observation", "Condition"}

    ips_hospital = await grant_hospital(services, UUID(patient.id))
    ips = ips_bundle()
    await push(services, UUID(patient.id), ips_hospital, ips)
    from_ips = (
        await client.get(
            f"/v1/records?hospitalId={ips_hospital}&limit=200", headers=patient.headers
        )
    ).json()
    assert from_ips["items"], "the IPS document's clinical entries are on the timeline"
    exported = msgspec.json.decode(
        (await client.get("/v1/export", headers=patient.headers)).content
    )
    assert len(exported["entry"]) == len(synthea["entry"]) + len(ips["entry"])
