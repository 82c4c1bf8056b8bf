"""Building record state for tests through the domain, the way a hospital push does."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from domain.access import HospitalActor, PatientActor, authorize
from domain.audit.events import RequestContext
from domain.consents.consent import ConsentScope
from domain.fhir.bundle import parse_bundle
from domain.records.record import IngestResult
from domain.records.sources import RecordSource


def observation(
    source_id: str,
    *,
    code: str = "8867-4",
    display: str = "Heart rate",
    value: float = 72,
    unit: str = "/min",
    when: str = "2024-05-01T08:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": source_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": code, "display": display}],
            "text": display,
        },
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    resource.update(extra)
    return resource


def bundle(*resources: dict[str, Any], bundle_type: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid4()}", "resource": copy.deepcopy(r)} for r in resources
        ],
    }


def _patient_permit(patient_id: UUID):
    """The patient's own permit, as the policy gives it when they link a hospital."""
    return authorize(
        PatientActor(patient_id),
        "link.created",
        patient_id,
        now=datetime.now(UTC),
        context=RequestContext(request_id="test-grant"),
    )


async def grant_hospital(services, patient_id: UUID, hospital_id: UUID | None = None) -> UUID:
    """A data-source consent for a hospital, as a completed link leaves it."""
    hospital_id = hospital_id or uuid4()
    now = datetime.now(UTC)
    await services.consents.create(
        _patient_permit(patient_id),
        kind="data-source",
        grantee_type="hospital",
        grantee_id=str(hospital_id),
        scope=ConsentScope(),
        start=now - timedelta(seconds=5),
        end=None,
    )
    return hospital_id


async def push(
    services, patient_id: UUID, hospital_id: UUID, fhir_bundle: dict[str, Any]
) -> IngestResult:
    consent = next(
        (
            c
            for c in await services.consents.list(_patient_permit(patient_id))
            if c.kind == "data-source" and c.grantee_id == str(hospital_id) and c.revoked_at is None
        ),
        None,
    )
    return await services.patient_records.ingest_delivery(
        HospitalActor(hospital_id),
        patient_id,
        RecordSource(kind="hospital", hospital_id=hospital_id),
        parse_bundle(fhir_bundle),
        context=RequestContext(request_id="test-push"),
        consent=consent,
    )
