"""Deduplication and version rules, and imaging views, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.fhir.validation import validate_resource
from domain.records.imaging import ImagingRecord, study_views
from domain.records.ingest import is_newer, plan_ingest
from domain.records.record import (
    CurrentVersion,
    IncomingRecord,
    content_hash,
    incoming_record,
    sort_at,
)
from domain.records.sources import RecordSource


def obs(source_id: str, value: float, meta: dict | None = None) -> IncomingRecord:
    resource = {
        "resourceType": "Observation",
        "id": source_id,
        "status": "final",
        "code": {"text": "Heart rate"},
        "valueQuantity": {"value": value, "unit": "/min"},
    }
    if meta:
        resource["meta"] = meta
    return incoming_record(
        resource, validate_resource(resource), source_resource_id=source_id, is_supporting=False
    )


def current(record: IncomingRecord, version: int = 1) -> CurrentVersion:
    return CurrentVersion(
        uuid4(),
        version,
        record.content_hash,
        record.fields.version_id,
        record.fields.last_updated,
        received_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def test_content_hash_ignores_key_order():
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


@pytest.mark.parametrize(
    ("stored_meta", "incoming_meta", "newer"),
    [
        ({"lastUpdated": "2024-01-01T00:00:00Z"}, {"lastUpdated": "2024-02-01T00:00:00Z"}, True),
        ({"lastUpdated": "2024-02-01T00:00:00Z"}, {"lastUpdated": "2024-01-01T00:00:00Z"}, False),
        ({"versionId": "3"}, {"versionId": "2"}, False),
        ({"versionId": "3"}, {"versionId": "10"}, True),
        ({"versionId": "a"}, {"versionId": "b"}, True),  # opaque ids: arrival order decides
        (None, None, True),
        (
            {"lastUpdated": "2024-01-01T00:00:00Z", "versionId": "5"},
            {"lastUpdated": "2024-01-01T00:00:00Z", "versionId": "4"},
            False,
        ),
    ],
)
def test_is_newer_uses_the_sources_own_ordering(stored_meta, incoming_meta, newer):
    stored = obs("x", 1, stored_meta)
    incoming = obs("x", 2, incoming_meta)
    assert is_newer(incoming.fields, current(stored)) is newer


def test_plan_sorts_a_delivery_into_inserts_updates_unchanged_and_stale():
    same = obs("same", 1)
    old = obs("old", 1, {"versionId": "2"})
    new = obs("new", 1, {"versionId": "1"})
    fresh = obs("fresh", 1)
    stored = {
        ("Observation", "same"): current(same),
        ("Observation", "old"): current(old),
        ("Observation", "new"): current(new),
    }
    plan = plan_ingest(
        [same, obs("old", 2, {"versionId": "1"}), obs("new", 2, {"versionId": "2"}), fresh], stored
    )
    assert [r.source_resource_id for r in plan.inserts] == ["fresh"]
    assert [r.source_resource_id for _, r in plan.updates] == ["new"]
    assert len(plan.unchanged) == 1 and len(plan.stale) == 1


def test_imaging_views_resolve_endpoints_from_the_same_source():
    hospital = RecordSource("hospital", uuid4())
    other = RecordSource("hospital", uuid4())
    study = {
        "resourceType": "ImagingStudy",
        "id": "s1",
        "status": "available",
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}],
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
        "numberOfSeries": 1,
        "description": "CT chest",
        "endpoint": [{"reference": "Endpoint/wado"}],
        "series": [
            {
                "uid": "1.2.3.4.1",
                "modality": {"code": "CT"},
                "numberOfInstances": 120,
                "bodySite": {"code": "51185008", "display": "Thorax"},
                "endpoint": [{"reference": "Endpoint/viewer"}],
            }
        ],
    }
    wado = {
        "resourceType": "Endpoint",
        "id": "wado",
        "status": "active",
        "address": "https://pacs.example/dicomweb",
        "connectionType": {"code": "dicom-wado-rs"},
    }
    viewer = {
        "resourceType": "Endpoint",
        "id": "viewer",
        "status": "active",
        "address": "https://view.example/s/1",
        "connectionType": {"code": "ihe-iid"},
    }
    foreign = dict(wado, address="https://elsewhere.example/")
    when = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [
        ImagingRecord(uuid4(), hospital, "ImagingStudy", "s1", when, study),
        ImagingRecord(uuid4(), hospital, "Endpoint", "wado", None, wado),
        ImagingRecord(uuid4(), hospital, "Endpoint", "viewer", None, viewer),
        ImagingRecord(uuid4(), other, "Endpoint", "wado", None, foreign),
    ]
    [view] = study_views(rows)
    assert (
        view.study_uid == "1.2.3.4"
        and view.modalities == ("CT",)
        and view.body_sites == ("Thorax",)
    )
    assert view.instance_count == 120 and view.series_count == 1 and view.description == "CT chest"
    assert [(link.kind, link.url) for link in view.links] == [
        ("dicomweb", "https://pacs.example/dicomweb"),
        ("viewer", "https://view.example/s/1"),
    ]


def test_a_record_stands_on_the_timeline_when_it_happened_else_when_received():
    received = datetime(2024, 6, 1, tzinfo=UTC)
    undated = obs("hr-undated", 70)
    assert undated.fields.effective_at is None
    assert sort_at(undated.fields, received) == received
    dated = {**undated.resource, "effectiveDateTime": "2023-02-03T04:05:06Z"}
    fields = validate_resource(dated)
    assert sort_at(fields, received) == datetime(2023, 2, 3, 4, 5, 6, tzinfo=UTC)
