"""FHIR R4 validation, indexing and Bundle parsing (domain/fhir/), on the official
HL7 R4 examples, a Synthea patient bundle, the IPS example, and broken variants."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.fhir.bundle import parse_bundle
from domain.fhir.catalogue import PATIENT_COMPARTMENT_TYPES, SUPPORTING_TYPES
from domain.fhir.datatypes import FhirDate, FhirInstant, parse_fhir_datetime
from domain.fhir.index import IndexedFields
from domain.fhir.validation import InvalidFhir, validate_resource
from tests.fhir_examples import (
    VALIDATED_TYPES,
    hl7_example,
    hl7_example_names,
    ips_bundle,
    synthea_bundle,
)

EXAMPLES = [name for kind in VALIDATED_TYPES for name in hl7_example_names(kind)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the official examples ------------------------------------------------------------


def test_every_validated_type_has_real_examples():
    per_type = Counter(name.split("-")[0] for name in EXAMPLES)
    assert set(per_type) == set(VALIDATED_TYPES)
    # DocumentReference has one top-level HL7 example; Bundle-xds carries a second.
    assert all(n >= 2 for kind, n in per_type.items() if kind != "DocumentReference")
    assert len(EXAMPLES) > 190


@pytest.mark.parametrize("name", EXAMPLES)
def test_hl7_example_validates(name):
    resource = hl7_example(name)
    fields = validate_resource(resource)
    assert fields.resource_type == resource["resourceType"] == name.split("-")[0]
    assert fields.source_id == resource["id"]
    if fields.effective_at is not None:
        assert fields.effective_at.tzinfo is UTC
    # Every one of these has a status (Condition/Allergy: the clinical status).
    assert fields.status or resource["resourceType"] in ("Condition", "AllergyIntolerance")


def test_most_hl7_examples_have_a_date_and_a_display():
    fields = [validate_resource(hl7_example(name)) for name in EXAMPLES]
    dated = sum(f.effective_at is not None for f in fields)
    shown = sum(bool(f.display) for f in fields)
    assert dated / len(fields) > 0.85, dated
    assert shown / len(fields) > 0.9, shown


# (example, expected fields) for one example of each type, read off the HL7 files.
INDEXED = [
    (
        "Observation-example",
        dict(
            category="vital-signs",
            code_system="http://loinc.org",
            code="29463-7",
            display="Body Weight",
            effective_at=utc(2016, 3, 28),
            status="final",
            value="185",
            unit="lbs",
        ),
    ),
    (
        "Observation-f206",
        dict(display="Blood culture", value="Staphylococcus aureus", unit=None),
    ),
    (
        "DiagnosticReport-f201",
        dict(
            code="429858000",
            display="CT of head-neck",
            effective_at=utc(2012, 12, 1, 11, 0),  # 12:00+01:00
            status="final",
        ),
    ),
    (
        "ImagingStudy-example-xr",
        dict(
            category="DX",
            display="XR Wrist 3+ Views",
            effective_at=utc(2017, 1, 1, 8, 1, 20),
            status="available",
        ),
    ),
    (
        "MedicationRequest-medrx0310",
        # medicationReference "#med0310" -> the contained Medication's code.
        dict(code="50580-506-02", display="Tylenol PM", effective_at=utc(2015, 1, 15)),
    ),
    (
        "MedicationDispense-meddisp0301",
        dict(
            display="Vancomycin Hydrochloride",
            effective_at=utc(2015, 1, 15, 10, 20),
            status="in-progress",
            value="12",
            unit="Vial",
        ),
    ),
    (
        "MedicationStatement-example001",
        dict(category="inpatient", display="Tylenol PM", effective_at=utc(2015, 1, 23)),
    ),
    (
        "Condition-f201",
        dict(code="386661006", display="Fever", effective_at=utc(2013, 4, 2), status="resolved"),
    ),
    (
        "AllergyIntolerance-example",
        dict(
            category="food",
            display="Cashew nuts",
            effective_at=utc(2014, 10, 9, 3, 58),  # recordedDate 14:58+11:00
            status="active",
        ),
    ),
    (
        "Immunization-example",
        dict(code="FLUVAX", display="Fluvax (Influenza)", effective_at=utc(2013, 1, 10)),
    ),
    ("Procedure-example", dict(display="Appendectomy", effective_at=utc(2013, 4, 5))),
    (
        "Encounter-emerg",
        dict(
            category="IMP",
            display="inpatient encounter",
            effective_at=utc(2017, 1, 31, 21, 15),
            status="in-progress",
        ),
    ),
    (
        "DocumentReference-example",
        dict(
            code="34108-1",
            display="Outpatient Note",
            effective_at=utc(2005, 12, 23, 22, 43, 41),
            status="current",
        ),
    ),
    ("Patient-example", dict(display="Peter James Chalmers", status=None)),
    ("Practitioner-example", dict(display="Adam Careful", effective_at=None)),
    ("Organization-hl7", dict(display="Health Level Seven International")),
]


@pytest.mark.parametrize(("name", "expected"), INDEXED, ids=[n for n, _ in INDEXED])
def test_indexed_fields_of_hl7_examples(name, expected):
    fields = validate_resource(hl7_example(name))
    got = {key: getattr(fields, key) for key in expected}
    assert got == expected


def test_meta_is_indexed():
    resource = hl7_example("Observation-example")
    resource["meta"] = {"versionId": "7", "lastUpdated": "2020-02-03T04:05:06.789+02:00"}
    fields = validate_resource(resource)
    assert fields.version_id == "7"
    assert fields.last_updated == datetime(2020, 2, 3, 2, 5, 6, 789000, tzinfo=UTC)


# --- bundles --------------------------------------------------------------------------

GOOD_BUNDLES = {
    "Bundle-bundle-example": 2,  # searchset with a search.mode include Medication
    "Bundle-father": 8,  # document
    "Bundle-xds": 5,  # transaction: DocumentReference, Binary, Patient, Practitioners
    "Bundle-report": 14,
    "Bundle-lipids": 5,
    "Bundle-micro": 27,
    "Bundle-ghp": 55,
    "Bundle-f001": 2,
    "Bundle-dg2": 2,
    "Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe": 2,  # message: header + outcome skipped
    "Bundle-bundle-search-warning": 0,  # only an OperationOutcome
}


@pytest.mark.parametrize(("name", "count"), GOOD_BUNDLES.items(), ids=list(GOOD_BUNDLES))
def test_hl7_bundle_parses(name, count):
    bundle = hl7_example(name)
    entries = parse_bundle(bundle)
    assert len(entries) == count
    for parsed in entries:
        original = bundle["entry"][parsed.index]
        assert parsed.full_url == original.get("fullUrl")
        assert parsed.fields.resource_type == original["resource"]["resourceType"]
        assert parsed.is_supporting == (
            parsed.fields.resource_type in SUPPORTING_TYPES
            or parsed.fields.resource_type == "Patient"
        )


def test_document_bundle_kinds():
    entries = parse_bundle(hl7_example("Bundle-father"))
    kinds = {e.fields.resource_type: e.is_supporting for e in entries}
    composition = next(e for e in entries if e.fields.resource_type == "Composition")
    assert composition.fields.effective_at is not None and composition.fields.display
    assert kinds["Composition"] is False
    assert kinds["Observation"] is False
    assert kinds["Practitioner"] is True
    assert kinds["Patient"] is True


def test_transaction_with_delete_and_get_is_refused():
    bundle = hl7_example("Bundle-bundle-transaction")
    with pytest.raises(InvalidFhir) as caught:
        parse_bundle(bundle)
    by_entry = {p.entry_index: p for p in caught.value.problems}
    methods = {i: e.get("request", {}).get("method") for i, e in enumerate(bundle["entry"])}
    for index, method in methods.items():
        if method in ("DELETE", "GET"):
            assert by_entry[index].field == "request.method"
            assert method in by_entry[index].message
    # The Parameters entry (a PATCH body) is not patient data.
    parameters = next(
        i
        for i, e in enumerate(bundle["entry"])
        if e.get("resource", {}).get("resourceType") == "Parameters"
    )
    assert parameters in by_entry
    assert caught.value.detail.startswith(f"entry {min(by_entry)} ")


def test_duplicate_type_and_id_in_one_bundle_is_refused():
    # Bundle-bundle-references: Observation/14 from two servers (and Patient/23...).
    with pytest.raises(InvalidFhir) as caught:
        parse_bundle(hl7_example("Bundle-bundle-references"))
    problem = caught.value.problems[0]
    assert problem.field == "id"
    assert "Observation/14" in problem.message
    assert caught.value.errors[0].field == f"bundle.entry[{problem.entry_index}].resource.id"


def test_synthea_patient_bundle_parses_and_resolves_every_reference():
    bundle = synthea_bundle()
    entries = parse_bundle(bundle)
    assert len(entries) == len(bundle["entry"]) == 556
    kinds = Counter(e.fields.resource_type for e in entries)
    assert kinds["Observation"] == 374
    assert kinds["Patient"] == 1
    patient = next(e for e in entries if e.fields.resource_type == "Patient")
    assert patient.is_supporting
    patient_ref = f"Patient/{patient.resource['id']}"
    text = json.dumps([e.resource for e in entries])
    assert "urn:uuid:" not in text
    observations = [e for e in entries if e.fields.resource_type == "Observation"]
    assert all(o.resource["subject"]["reference"] == patient_ref for o in observations)
    assert all(o.fields.effective_at is not None for o in observations)
    # The input is not modified.
    original = bundle["entry"][observations[0].index]["resource"]
    assert original["subject"]["reference"].startswith("urn:uuid:")


def test_ips_document_bundle_parses():
    entries = parse_bundle(ips_bundle())
    assert len(entries) == 20
    kinds = Counter(e.fields.resource_type for e in entries)
    assert kinds == Counter(
        {
            "Observation": 7,
            "Organization": 2,
            "Condition": 2,
            "MedicationStatement": 2,
            "Medication": 2,
            "AllergyIntolerance": 2,
            "Composition": 1,
            "Patient": 1,
            "Practitioner": 1,
        }
    )
    statements = [e for e in entries if e.fields.resource_type == "MedicationStatement"]
    for statement in statements:
        reference = statement.resource["medicationReference"]["reference"]
        assert reference.startswith("Medication/")


# --- urn:uuid references ----------------------------------------------------------------

PATIENT_UUID = "a1b2c3d4-0000-4000-8000-000000000001"
OBS_UUID = "a1b2c3d4-0000-4000-8000-000000000002"


def observation(**overrides) -> dict:
    base = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "effectiveDateTime": "2021-06-01T08:30:00+02:00",
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def bundle_of(*resources: dict, kind: str = "transaction") -> dict:
    entries = []
    for resource in resources:
        entry: dict = {"resource": resource}
        if kind == "transaction":
            entry["request"] = {"method": "POST", "url": resource.get("resourceType", "x")}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def test_urn_uuid_references_are_rewritten_and_ids_assigned():
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{PATIENT_UUID}",
                "resource": {"resourceType": "Patient", "id": "p-17"},
                "request": {"method": "PUT", "url": "Patient/p-17"},
            },
            {
                "fullUrl": f"urn:uuid:{OBS_UUID}",
                "resource": observation(
                    subject={"reference": f"urn:uuid:{PATIENT_UUID}"},
                    hasMember=[{"reference": "urn:uuid:not-in-this-bundle"}],
                ),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    first, second = parse_bundle(copy.deepcopy(bundle))
    assert first.resource["id"] == "p-17"
    assert second.resource["subject"] == {"reference": "Patient/p-17"}
    # No id was sent: the uuid is the id, so a redelivery names the same resource.
    assert second.resource["id"] == OBS_UUID
    assert second.fields.source_id == OBS_UUID
    assert second.resource["hasMember"] == [{"reference": "urn:uuid:not-in-this-bundle"}]
    assert parse_bundle(copy.deepcopy(bundle))[1].resource == second.resource
    assert second.fields.value == "72"
    assert second.fields.effective_at == utc(2021, 6, 1, 6, 30)


# --- what is refused --------------------------------------------------------------------

INVALID_RESOURCES = [
    ("missing status", observation(status=None), "status", "required"),
    ("bad status code", observation(status="done"), "status", "invalid code 'done'"),
    (
        "value as a string",
        observation(valueQuantity={"value": "72", "unit": "/min"}),
        "valueQuantity.value",
        "must be a number, got a string",
    ),
    (
        "impossible date",
        observation(effectiveDateTime="2020-13-45"),
        "effectiveDateTime",
        "not a valid FHIR dateTime",
    ),
    (
        "day that does not exist",
        observation(effectiveDateTime="2021-02-30"),
        "effectiveDateTime",
        "not a valid FHIR dateTime",
    ),
    (
        "time without seconds",
        observation(effectiveDateTime="2021-02-03T10:00Z"),
        "effectiveDateTime",
        "not a valid FHIR dateTime",
    ),
    ("missing code", observation(code=None), "code", "required"),
    (
        "two value[x]",
        observation(valueString="high"),
        "valueString",
        "only one of valueQuantity, valueString",
    ),
    (
        "unknown resourceType",
        {"resourceType": "Observaton", "status": "final"},
        "resourceType",
        "not a FHIR R4 resource type",
    ),
    (
        "not patient data",
        {"resourceType": "CapabilityStatement", "status": "active"},
        "resourceType",
        "not patient data",
    ),
    ("bad id", observation(id="has space"), "id", "must be 1-64 characters"),
    ("id too long", observation(id="x" * 65), "id", "must be 1-64 characters"),
    ("id not a string", observation(id=17), "id", "must be 1-64 characters"),
    ("no resourceType", {"status": "final"}, "resourceType", "required"),
    (
        "category not an array",
        observation(category={"text": "vital-signs"}),
        "category",
        "must be an array",
    ),
    (
        "nested coding not an array",
        observation(code={"coding": {"code": "x"}}),
        "code.coding",
        "must be an array",
    ),
    (
        "medication[x] missing",
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/1"},
        },
        "medication[x]",
        "required",
    ),
    (
        "bad intent",
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "wish",
            "medicationCodeableConcept": {"text": "aspirin"},
            "subject": {"reference": "Patient/1"},
        },
        "intent",
        "allowed: filler-order, instance-order, option, order, original-order",
    ),
    (
        "allergy category not a code",
        {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": "Patient/1"},
            "category": ["pollen"],
        },
        "category[0]",
        "invalid code 'pollen'",
    ),
    (
        "document without content",
        {"resourceType": "DocumentReference", "status": "current", "content": []},
        "content",
        "at least 1",
    ),
    (
        "encounter without class",
        {"resourceType": "Encounter", "status": "finished"},
        "class",
        "required",
    ),
    (
        "immunization without occurrence",
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"text": "flu"},
            "patient": {"reference": "Patient/1"},
        },
        "occurrence[x]",
        "required",
    ),
    (
        "instant without a time",
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {"text": "CBC"},
            "issued": "2020-01-02",
        },
        "issued",
        "not a valid FHIR instant",
    ),
    (
        "patient birthDate with a time",
        {"resourceType": "Patient", "birthDate": "1980-01-01T00:00:00Z"},
        "birthDate",
        "not a valid FHIR date",
    ),
    (
        "bad meta.lastUpdated",
        {"resourceType": "Organization", "meta": {"lastUpdated": "yesterday"}},
        "meta.lastUpdated",
        "not a valid FHIR instant",
    ),
    ("not an object", ["Observation"], "", "must be a JSON object"),
]


@pytest.mark.parametrize(
    ("resource", "field", "words"),
    [case[1:] for case in INVALID_RESOURCES],
    ids=[case[0] for case in INVALID_RESOURCES],
)
def test_invalid_resource_is_refused_naming_the_field(resource, field, words):
    with pytest.raises(InvalidFhir) as caught:
        validate_resource(resource)
    problem = caught.value.problems[0]
    assert problem.field == field
    assert words in problem.message
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.errors[0].field == (field or "resource")
    assert words in caught.value.detail


def test_bad_entry_among_good_ones_is_named_by_index():
    resources = [
        hl7_example("Observation-example"),
        hl7_example("Condition-f201"),
        hl7_example("Procedure-example"),
        observation(id="broken", status=None),
        hl7_example("Immunization-example"),
        observation(id="late", effectiveDateTime="2020-13-45"),
    ]
    with pytest.raises(InvalidFhir) as caught:
        parse_bundle(bundle_of(*resources))
    error = caught.value
    assert error.detail.startswith("entry 3 (Observation): field 'status' is required")
    assert "and 1 more problem" in error.detail
    assert [(p.entry_index, p.field) for p in error.problems] == [
        (3, "status"),
        (5, "effectiveDateTime"),
    ]
    assert [e.field for e in error.errors] == [
        "bundle.entry[3].resource.status",
        "bundle.entry[5].resource.effectiveDateTime",
    ]


def test_good_entries_alone_parse():
    resources = [hl7_example(n) for n in ("Observation-example", "Condition-f201")]
    entries = parse_bundle(bundle_of(*resources, kind="collection"))
    assert [e.index for e in entries] == [0, 1]
    assert [e.fields.source_id for e in entries] == ["example", "f201"]


INVALID_BUNDLES = [
    ("not an object", "just text", "bundle", "must be a JSON object"),
    ("not a Bundle", {"resourceType": "Patient"}, "bundle.resourceType", "must be 'Bundle'"),
    ("no type", {"resourceType": "Bundle", "entry": []}, "bundle.type", "required"),
    (
        "history bundle",
        {"resourceType": "Bundle", "type": "history", "entry": []},
        "bundle.type",
        "not accepted",
    ),
    ("no entry", {"resourceType": "Bundle", "type": "collection"}, "bundle.entry", "required"),
    (
        "entry not a list",
        {"resourceType": "Bundle", "type": "collection", "entry": {"resource": {}}},
        "bundle.entry",
        "must be an array",
    ),
    (
        "empty entry",
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        "bundle.entry",
        "empty",
    ),
    (
        "entry without resource",
        {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1"}]},
        "bundle.entry[0].resource",
        "carries no resource",
    ),
    (
        "DELETE entry",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": "Observation/1"}}],
        },
        "bundle.entry[0].request.method",
        "DELETE is not accepted",
    ),
    (
        "entry not an object",
        {"resourceType": "Bundle", "type": "batch", "entry": [3]},
        "bundle.entry[0]",
        "must be a JSON object",
    ),
    (
        "nested Bundle",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Bundle", "type": "collection"}}],
        },
        "bundle.entry[0].resource.resourceType",
        "not patient data",
    ),
]


@pytest.mark.parametrize(
    ("bundle", "path", "words"),
    [case[1:] for case in INVALID_BUNDLES],
    ids=[case[0] for case in INVALID_BUNDLES],
)
def test_invalid_bundle_is_refused(bundle, path, words):
    with pytest.raises(InvalidFhir) as caught:
        parse_bundle(bundle)
    assert caught.value.errors[0].field == path
    assert words in caught.value.errors[0].message


# --- dates ----------------------------------------------------------------------------

DATES = [
    ("2012", utc(2012, 1, 1)),
    ("2012-05", utc(2012, 5, 1)),
    ("2012-05-03", utc(2012, 5, 3)),
    ("2012-05-03T10:00:00+02:00", utc(2012, 5, 3, 8)),
    ("2012-05-03T23:30:00-05:00", utc(2012, 5, 4, 4, 30)),
    ("2012-05-03T10:00:00", utc(2012, 5, 3, 10)),  # no zone: read as UTC
    ("2012-05-03T10:00:00.1234567Z", utc(2012, 5, 3, 10, 0, 0, 123456)),
    ("2016-12-31T23:59:60Z", utc(2016, 12, 31, 23, 59, 59)),  # leap second
    ("2020-13-45", None),
    ("2021-02-29", None),
    ("2021-02-03T24:00:00Z", None),
    ("2021-02-03T10:00:00+15:00", None),
    ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
    ("12-05-2012", None),
    ("２０２０", None),  # fullwidth digits are not FHIR digits
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_fhir_dates_become_utc(text, expected):
    assert parse_fhir_datetime(text) == expected


def test_date_and_instant_precision():
    assert parse_fhir_datetime("2012-05-03", FhirDate) == utc(2012, 5, 3)
    assert parse_fhir_datetime("2012-05-03T10:00:00Z", FhirDate) is None
    assert parse_fhir_datetime("2012-05-03", FhirInstant) is None


def test_type_sets():
    assert {"Observation", "Condition", "Composition", "Patient"} <= PATIENT_COMPARTMENT_TYPES
    assert len(PATIENT_COMPARTMENT_TYPES) == 66
    assert {"Organization", "Practitioner", "Medication", "Location"} <= SUPPORTING_TYPES
    # Specimen is in the compartment, but kept as something records point to.
    assert PATIENT_COMPARTMENT_TYPES & SUPPORTING_TYPES == {"Specimen"}
    assert "CapabilityStatement" not in PATIENT_COMPARTMENT_TYPES | SUPPORTING_TYPES


def test_other_compartment_types_are_indexed_loosely():
    entries = parse_bundle(synthea_bundle())
    claim = next(e for e in entries if e.fields.resource_type == "Claim")
    assert isinstance(claim.fields, IndexedFields)
    assert claim.fields.effective_at is not None  # Claim.created
    assert claim.fields.status == "active"


# --- never anything but InvalidFhir -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
resource_types = (
    st.sampled_from(
        [*sorted(PATIENT_COMPARTMENT_TYPES)[:8], *VALIDATED_TYPES, "Patient", "Bundle", "Nope"]
    )
    | json_values
)
bundle_types = st.sampled_from(["transaction", "collection", "message", "history"]) | json_values
requests = (
    st.none()
    | st.fixed_dictionaries(
        {"method": st.sampled_from(["POST", "PUT", "DELETE", "GET"]) | json_values}
    )
    | json_values
)
searches = (
    st.none()
    | st.fixed_dictionaries(
        {"mode": st.sampled_from(["match", "include", "outcome"]) | json_values}
    )
    | json_values
)
field_names = st.sampled_from(
    [
        "id",
        "meta",
        "status",
        "code",
        "category",
        "subject",
        "effectiveDateTime",
        "effectivePeriod",
        "valueQuantity",
        "valueString",
        "medicationReference",
        "medicationCodeableConcept",
        "contained",
        "onsetDateTime",
        "class",
        "content",
        "series",
        "intent",
        "occurrenceDateTime",
        "reaction",
        "date",
        "period",
        "created",
    ]
)


def _survives(call, value) -> None:
    try:
        call(value)
    except InvalidFhir:
        pass


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_random_json_raises_only_invalid_fhir(value):
    _survives(validate_resource, value)
    _survives(parse_bundle, value)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    resource_type=resource_types,
    fields=st.dictionaries(field_names, json_values, max_size=6),
    full_url=st.none() | st.just(f"urn:uuid:{OBS_UUID}") | json_values,
    request=requests,
    search=searches,
    bundle_type=bundle_types,
)
def test_random_resources_and_bundles_raise_only_invalid_fhir(
    resource_type, fields, full_url, request, search, bundle_type
):
    resource = {"resourceType": resource_type, **fields}
    _survives(validate_resource, resource)
    entry = {"resource": resource, "fullUrl": full_url, "request": request, "search": search}
    entry = {k: v for k, v in entry.items() if v is not None}
    bundle = {"resourceType": "Bundle", "type": bundle_type, "entry": [entry, entry]}
    _survives(parse_bundle, bundle)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(EXAMPLES), field=field_names, value=json_values, seed=st.integers())
def test_mutated_hl7_examples_raise_only_invalid_fhir(name, field, value, seed):
    resource = hl7_example(name)
    resource[field] = value
    _survives(validate_resource, resource)
