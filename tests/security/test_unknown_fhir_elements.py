"""Item: unknown FHIR elements were stored silently.

Before: `POST /v1/records` with an Observation carrying `bogusField`, or a Consent
carrying `{"__main__": {...}}`, was accepted (201): a typo such as `valueQuantiy`
was kept as junk and the value never reached the timeline. Now:
- a patient may enter only the patient-reportable types (Observation, Condition,
  AllergyIntolerance, MedicationStatement, Immunization, DocumentReference): any
  other type is 422 naming `resourceType`;
- an element FHIR R4 does not define, at any depth, is 422 naming its path;
- hospital pushes follow one rule: the entry is kept as received (the delivery
  stays all or nothing) and every unknown path is named in the reply's
  `unknownElements`, so nothing unknown is silently kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.fhir.elements import PATIENT_REPORTABLE_TYPES, RESOURCES, unknown_elements
from tests.hospital_support import linked, new_hospital
from tests.records_support import bundle, observation
from tests.security.support import assert_problem

DATA = Path(__file__).parents[1] / "data" / "fhir"
OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}}


def fields_of(response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ({**OBSERVATION, "bogusField": 1}, "bogusField"),
        ({**OBSERVATION, "valueQuantiy": {"value": 80, "unit": "kg"}}, "valueQuantiy"),
        ({**OBSERVATION, "code": {"codng": [{"code": "x"}]}}, "code.codng"),
        (
            {**OBSERVATION, "valueQuantity": {"value": 80, "unti": "kg"}},
            "valueQuantity.unti",
        ),
        (
            {
                **OBSERVATION,
                "component": [{"code": {"text": "a"}}, {"code": {"text": "b"}, "x": 1}],
            },
            "component[1].x",
        ),
        ({**OBSERVATION, "meta": {"tag": [{"code": "a", "colour": "red"}]}}, "meta.tag[0].colour"),
        (
            {**OBSERVATION, "extension": [{"url": "u", "valueString": "s", "z": 1}]},
            "extension[0].z",
        ),
        ({**OBSERVATION, "_status": {"foo": 1}}, "_status.foo"),
        ({**OBSERVATION, "__main__": {"__main__": -153534}}, "__main__"),
    ],
)
async def test_self_reported_record_with_an_unknown_element__422_naming_its_path(
    client, patient, resource, path
):
    response = await client.post("/v1/records", json=resource, headers=patient.headers)
    assert_problem(response, 422, "invalid-fhir")
    assert path in fields_of(response), response.json()


async def test_consent_with_junk__422_not_a_patient_reportable_type(client, patient):
    response = await client.post(
        "/v1/records",
        json={"resourceType": "Consent", "__main__": {"__main__": -153534}},
        headers=patient.headers,
    )
    assert_problem(response, 422)
    assert fields_of(response) == ["resourceType"]


@pytest.mark.parametrize(
    "resource_type", ["Procedure", "Encounter", "MedicationRequest", "Patient", "Bundle"]
)
async def test_types_a_patient_does_not_report__422_naming_resource_type(
    client, patient, resource_type
):
    response = await client.post(
        "/v1/records",
        json={"resourceType": resource_type, "status": "completed"},
        headers=patient.headers,
    )
    assert_problem(response, 422)
    assert fields_of(response) == ["resourceType"]


async def test_well_formed_records_with_extensions_and_primitive_extensions__201(client, patient):
    resource = {
        **OBSERVATION,
        "valueQuantity": {"value": 80.5, "unit": "kg", "system": "http://unitsofmeasure.org"},
        "extension": [
            {"url": "https://example.org/device", "valueCodeableConcept": {"text": "scale"}}
        ],
        "_status": {"extension": [{"url": "https://example.org/why", "valueString": "home"}]},
        "note": [{"authorString": "me", "text": "after breakfast"}],
    }
    response = await client.post("/v1/records", json=resource, headers=patient.headers)
    assert response.status_code == 201, response.text


def test_the_element_tables__accept_every_catalogued_resource_of_the_example_corpus():
    """HL7's own examples, the IPS bundle and a Synthea patient: a table that
    missed an R4 element would name it here."""
    checked = 0
    for path in DATA.rglob("*.json"):
        document = json.loads(path.read_text())
        resources = (
            [e.get("resource", {}) for e in document.get("entry", [])]
            if document.get("resourceType") == "Bundle"
            else [document]
        )
        for resource in resources:
            if resource.get("resourceType") in RESOURCES:
                assert unknown_elements(resource) == [], (path.name, resource.get("id"))
                checked += 1
    assert checked > 500
    assert set(RESOURCES) == PATIENT_REPORTABLE_TYPES


async def test_hospital_push_with_an_unknown_element__kept_and_named_in_the_reply(
    client, settings, patient
):
    hospital = await new_hospital(client, settings)
    await linked(client, patient, hospital, "MRN-U")
    typo = observation("obs-typo")
    typo["valueQuantiy"] = typo.pop("valueQuantity")
    response = await hospital.push("MRN-U", bundle(observation("obs-fine"), typo))
    assert response.status_code == 200, response.text
    assert response.json()["unknownElements"] == ["bundle.entry[1].resource.valueQuantiy"]
    # Kept as received: the hospital's record is what the hospital sent.
    items = (await client.get("/v1/records", headers=patient.headers)).json()["items"]
    assert len(items) == 2
    clean = await hospital.push("MRN-U", bundle(observation("obs-fine-2")))
    assert "unknownElements" not in clean.json()


async def test_parked_push_with_an_unknown_element__named_in_the_202_reply(client, settings):
    hospital = await new_hospital(client, settings)
    response = await hospital.push("MRN-NOT-YET", bundle({**observation("o"), "oops": True}))
    assert response.status_code == 202, response.text
    assert response.json()["unknownElements"] == ["bundle.entry[0].resource.oops"]
