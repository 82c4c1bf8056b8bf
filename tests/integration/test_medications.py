"""Medications from what hospitals push: GET /v1/medications computes state,
run-out day, refills remaining and the prescribing hospital; the refill scan
tells the patient once per occurrence however often it runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from domain.clock import FixedClock
from infra.bootstrap import close_services, open_services
from tests.conftest import register_patient, settings_for
from tests.fhir_examples import hl7_example, hl7_example_names, synthea_bundle
from tests.hospital_support import linked, new_hospital
from tests.records_support import bundle

# 02:00 UTC is 10:00 in Shanghai, the patients' default zone.
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
METFORMIN = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975", "display": "Metformin 500 MG"}], "text": "Metformin 500 MG"}  # fmt: skip


def prescription(rid: str, *, status: str = "active", repeats: int = 2, updated: str | None = None):
    resource = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": METFORMIN,
        "authoredOn": "2026-01-01",
        "dispenseRequest": {
            "numberOfRepeatsAllowed": repeats,
            "expectedSupplyDuration": {
                "value": 30,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        },
    }
    if updated:
        resource["meta"] = {"lastUpdated": updated}
    return resource


def dispense(did: str, rx: str, handed_over: datetime, days: int = 30):
    return {
        "resourceType": "MedicationDispense",
        "id": did,
        "status": "completed",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": METFORMIN,
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx}"}],
        "whenHandedOver": handed_over.isoformat(),
        "daysSupply": {
            "value": days,
            "unit": "Day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        },
    }


@pytest.fixture
async def at_now(database_dsn, data_dir):
    """The app and the service's adapters on one clock the test moves; no worker:
    the test runs the scan as the worker would."""
    settings = settings_for(database_dsn, data_dir)
    clock = FixedClock(NOW)
    services = await open_services(settings, database_dsn, clock=clock)
    client = AsyncTestClient(
        app=create_app(settings, clock=clock), base_url="http://testserver.local"
    )
    await client.__aenter__()
    try:
        yield client, services, clock, settings
    finally:
        await client.__aexit__(None, None, None)
        await close_services(services)


async def medications(client, patient) -> dict[str, dict]:
    response = await client.get("/v1/medications", headers=patient.headers)
    assert response.status_code == 200, response.text
    return {m["name"] + "/" + m["status"]: m for m in response.json()["items"]}


async def sign_in_again(client, patient) -> None:
    """After the clock moved past the access token's life."""
    response = await client.post(
        "/v1/auth/login", json={"email": patient.email, "password": patient.password}
    )
    assert response.status_code == 200, response.text
    patient.tokens = response.json()


async def kinds(client, patient) -> list[str]:
    response = await client.get("/v1/notifications", headers=patient.headers)
    return sorted(item["kind"] for item in response.json()["items"])


async def test_refill_states_reminders_and_renewal_from_pushed_records(at_now):
    client, services, clock, settings = at_now
    patient = await register_patient(client)
    hospital = await new_hospital(client, settings, name="Huashan Hospital", clock=clock)
    await linked(client, patient, hospital, "MRN-7")
    # Handed over 28 days ago with 30 days' supply: runs out in 2 days.
    response = await hospital.push(
        "MRN-7",
        bundle(
            prescription("rx-1"),
            dispense("d-1", "rx-1", NOW - timedelta(days=28)),
            prescription("rx-old", status="stopped"),
        ),
    )
    assert response.status_code == 200, response.text

    meds = await medications(client, patient)
    assert set(meds) == {"Metformin 500 MG/active", "Metformin 500 MG/stopped"}
    current = meds["Metformin 500 MG/active"]
    assert current["state"] == "refill-due"
    assert current["runOutOn"] == "2026-03-12" and current["lastFilledOn"] == "2026-02-10"
    assert current["refillsRemaining"] == 2 and current["fillsUsed"] == 1
    assert current["prescribingHospital"] == "Huashan Hospital"
    assert meds["Metformin 500 MG/stopped"]["state"] == "stopped"

    # The scan reminds once; running it again (or twice at once) adds nothing.
    # (It scans every patient in this test database: count this one's inbox.)
    assert await services.refill_scan.run() >= 1
    assert await services.refill_scan.run() == 0
    assert await kinds(client, patient) == ["refill-due"]

    # On the run-out day, a second reminder; again only once, even racing.
    clock.advance(days=2)
    await sign_in_again(client, patient)
    await asyncio.gather(services.refill_scan.run(), services.refill_scan.run())
    assert await services.refill_scan.run() == 0
    assert await kinds(client, patient) == ["refill-due", "refill-due"]
    texts = (await client.get("/v1/notifications", headers=patient.headers)).json()["items"]
    assert "runs out today" in texts[0]["body"]

    # The hospital sends a new version of the prescription with no repeats left:
    # recomputed in place (still one active medication), and now it needs renewal.
    response = await hospital.push(
        "MRN-7", bundle(prescription("rx-1", repeats=0, updated="2026-03-12T00:00:00Z"))
    )
    assert response.json()["updated"] == 1
    meds = await medications(client, patient)
    assert len(meds) == 2
    assert meds["Metformin 500 MG/active"]["state"] == "renewal-needed"
    assert await services.refill_scan.run() >= 1
    assert await services.refill_scan.run() == 0
    assert await kinds(client, patient) == ["refill-due", "refill-due", "renewal-needed"]

    # A refill picked up at another hospital's pharmacy counts too.
    other = await new_hospital(client, settings, name="Community Pharmacy", clock=clock)
    await linked(client, patient, other, "PH-1")
    handed = dispense("pd-9", "unknown", NOW + timedelta(days=2))
    del handed["authorizingPrescription"]
    response = await other.push("PH-1", bundle(handed))
    assert response.status_code == 200 and response.json()["created"] == 1, response.text
    meds = await medications(client, patient)
    assert meds["Metformin 500 MG/active"]["fillsUsed"] == 2


async def test_turned_off_refill_reminders_and_longer_lead(at_now):
    client, services, clock, settings = at_now
    patient = await register_patient(client)
    hospital = await new_hospital(client, settings, clock=clock)
    await linked(client, patient, hospital, "MRN-8")
    await hospital.push(
        "MRN-8",
        bundle(prescription("rx-2"), dispense("d-2", "rx-2", NOW - timedelta(days=22))),
    )
    assert (await medications(client, patient))["Metformin 500 MG/active"]["state"] == "on-track"
    await client.put(
        "/v1/me/notification-preferences", json={"refillLeadDays": 10}, headers=patient.headers
    )
    assert (await medications(client, patient))["Metformin 500 MG/active"]["state"] == "refill-due"
    await client.put(
        "/v1/me/notification-preferences",
        json={"refillLeadDays": 10, "kinds": {"refill-due": False}},
        headers=patient.headers,
    )
    await services.refill_scan.run()
    assert await kinds(client, patient) == []


async def test_synthea_and_hl7_examples_as_hospitals_send_them(at_now):
    client, _services, clock, settings = at_now
    patient = await register_patient(client)
    hospital = await new_hospital(client, settings, clock=clock)
    await linked(client, patient, hospital, "SYN-1")
    response = await hospital.push("SYN-1", synthea_bundle())
    assert response.status_code == 200, response.text
    meds = (await client.get("/v1/medications", headers=patient.headers)).json()["items"]
    assert len(meds) == 10
    assert sorted(m["state"] for m in meds).count("stopped") == 9
    (active,) = [m for m in meds if m["status"] == "active"]
    assert active["state"] == "on-track" and active["fillsUsed"] == 0

    # HL7's examples: orders and their dispenses, one delivery.
    other = await register_patient(client)
    await linked(client, other, hospital, "HL7-1")
    resources = [
        hl7_example(name)
        for name in hl7_example_names("MedicationRequest") + hl7_example_names("MedicationDispense")
    ]
    response = await hospital.push("HL7-1", bundle(*resources))
    assert response.status_code == 200, response.text
    listed = (await client.get("/v1/medications", headers=other.headers)).json()["items"]
    by_id = {m["id"]: m for m in listed}
    assert listed and len(by_id) == len(listed)
    states = {m["state"] for m in listed}
    assert states <= {"on-track", "refill-due", "renewal-needed", "expired", "stopped"}
    # The patient's own list holds none of the other patient's medications.
    mine = (await client.get("/v1/medications", headers=patient.headers)).json()["items"]
    assert not {m["id"] for m in mine} & set(by_id)
