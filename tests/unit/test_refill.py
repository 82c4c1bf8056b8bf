"""The refill engine, rule by rule: one table row per rule or edge."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

import pytest

from domain.medications.refill import SourcedResource, compute_medications
from domain.medications.supply import daily_dose, duration_days, local_date

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
HOSPITAL_A = UUID("00000000-0000-0000-0000-00000000000a")
HOSPITAL_B = UUID("00000000-0000-0000-0000-00000000000b")
METFORMIN = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975", "display": "Metformin 500 MG"}]}  # fmt: skip
DATA = Path(__file__).parent.parent / "data" / "fhir"


def request(
    rid: str = "rx1",
    *,
    status: str = "active",
    intent: str = "order",
    repeats: int | None = 2,
    supply_days: int | None = 30,
    quantity: float | None = None,
    validity_end: str | None = None,
    interval_days: int | None = None,
    dosage: list | None = None,
    authored: str = "2026-01-01",
    hospital: UUID | None = HOSPITAL_A,
) -> SourcedResource:
    dispense_request: dict[str, Any] = {}
    if repeats is not None:
        dispense_request["numberOfRepeatsAllowed"] = repeats
    if supply_days is not None:
        dispense_request["expectedSupplyDuration"] = {"value": supply_days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}  # fmt: skip
    if quantity is not None:
        dispense_request["quantity"] = {"value": quantity, "unit": "tablet"}
    if validity_end is not None:
        dispense_request["validityPeriod"] = {"start": authored, "end": validity_end}
    if interval_days is not None:
        dispense_request["dispenseInterval"] = {"value": interval_days, "code": "d"}
    resource = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": intent,
        "medicationCodeableConcept": METFORMIN,
        "authoredOn": authored,
        "dispenseRequest": dispense_request,
    }
    if dosage is not None:
        resource["dosageInstruction"] = dosage
    return SourcedResource(uuid5(HOSPITAL_A, f"{hospital}/{rid}"), hospital, resource)


def dispense(
    when: str,
    *,
    rx: str | None = "rx1",
    days: float | None = None,
    quantity: float | None = None,
    status: str = "completed",
    hospital: UUID | None = HOSPITAL_A,
    did: str | None = None,
) -> SourcedResource:
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": did or f"d-{when}",
        "status": status,
        "medicationCodeableConcept": METFORMIN,
        "whenHandedOver": when,
    }
    if rx is not None:
        resource["authorizingPrescription"] = [{"reference": f"MedicationRequest/{rx}"}]
    if days is not None:
        resource["daysSupply"] = {"value": days, "unit": "Day", "code": "d"}
    if quantity is not None:
        resource["quantity"] = {"value": quantity, "unit": "tablets"}
    return SourcedResource(uuid5(HOSPITAL_B, f"{hospital}/{resource['id']}"), hospital, resource)


TWICE_DAILY_ONE_TABLET = [
    {
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
    }
]

# (case, requests, dispenses, today, expected fields)
CASES: list[tuple[str, list, list, date, dict[str, Any]]] = [
    (
        "no dispense yet: nothing used, every repeat left, no run-out",
        [request()],
        [],
        date(2026, 1, 5),
        {
            "state": "on-track",
            "fills_used": 0,
            "refills_remaining": 2,
            "run_out_on": None,
            "next_fill_earliest": date(2026, 1, 1),
        },
    ),
    (
        "first fill: repeats exclude it; run-out is hand-over + daysSupply",
        [request()],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 10),
        {
            "state": "on-track",
            "fills_used": 1,
            "refills_remaining": 2,
            "run_out_on": date(2026, 2, 1),
            "last_filled_on": date(2026, 1, 2),
        },
    ),
    (
        "refill due within the lead days",
        [request()],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 29),
        {"state": "refill-due", "run_out_on": date(2026, 2, 1)},
    ),
    (
        "one day outside the lead days is still on track",
        [request()],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 28),
        {"state": "on-track"},
    ),
    (
        "run out already and refills left: still refill-due",
        [request()],
        [dispense("2026-01-02", days=30)],
        date(2026, 2, 20),
        {"state": "refill-due"},
    ),
    (
        "no refills left after the last repeat: renewal needed",
        [request(repeats=1)],
        [dispense("2026-01-02", days=30), dispense("2026-02-01", days=30)],
        date(2026, 2, 5),
        {
            "state": "renewal-needed",
            "fills_used": 2,
            "refills_remaining": 0,
            "run_out_on": date(2026, 3, 3),
            "next_fill_earliest": None,
        },
    ),
    (
        "no numberOfRepeatsAllowed means no repeats: one fill, then renewal",
        [request(repeats=None)],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 5),
        {"state": "renewal-needed", "refills_allowed": 0, "refills_remaining": 0},
    ),
    (
        "validity period ends before the supply does: renewal needed",
        [request(validity_end="2026-01-20")],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 5),
        {"state": "renewal-needed", "valid_until": date(2026, 1, 20)},
    ),
    (
        "validity over and supply gone: expired",
        [request(validity_end="2026-03-01")],
        [dispense("2026-01-02", days=30)],
        date(2026, 3, 5),
        {"state": "expired"},
    ),
    (
        "validity over, no dispense ever: expired",
        [request(validity_end="2026-01-31")],
        [],
        date(2026, 2, 1),
        {"state": "expired"},
    ),
    (
        "stopped request: stopped, whatever its supply",
        [request(status="stopped")],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 31),
        {"state": "stopped"},
    ),
    (
        "completed request: stopped (the course is over), no reminder",
        [request(status="completed")],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 31),
        {"state": "stopped"},
    ),
    (
        "missing daysSupply: quantity ÷ daily dose from the instructions",
        [request(supply_days=None, dosage=TWICE_DAILY_ONE_TABLET)],
        [dispense("2026-01-02", quantity=60)],
        date(2026, 1, 5),
        {"run_out_on": date(2026, 2, 1)},
    ),
    (
        "missing daysSupply and quantity: the request's expected supply duration",
        [request(supply_days=28)],
        [dispense("2026-01-02")],
        date(2026, 1, 5),
        {"run_out_on": date(2026, 1, 30)},
    ),
    (
        "missing every duration: the request's quantity ÷ dose",
        [request(supply_days=None, quantity=90, dosage=TWICE_DAILY_ONE_TABLET)],
        [dispense("2026-01-02")],
        date(2026, 1, 5),
        {"run_out_on": date(2026, 2, 16)},
    ),
    (
        "no way to know the supply: no run-out date, on track",
        [request(supply_days=None)],
        [dispense("2026-01-02")],
        date(2026, 3, 5),
        {"run_out_on": None, "state": "on-track", "fills_used": 1},
    ),
    (
        "early refill: the new supply starts when the old one ends",
        [request()],
        [dispense("2026-01-02", days=30), dispense("2026-01-22", days=30)],
        date(2026, 1, 25),
        {"run_out_on": date(2026, 3, 3), "fills_used": 2, "refills_remaining": 1},
    ),
    (
        "overlapping dispenses on the same day stack",
        [request(repeats=3)],
        [dispense("2026-01-02", days=30, did="a"), dispense("2026-01-02", days=30, did="b")],
        date(2026, 1, 5),
        {"run_out_on": date(2026, 3, 3), "fills_used": 2, "refills_remaining": 2},
    ),
    (
        "a dispense that is not completed does not count",
        [request()],
        [dispense("2026-01-02", days=30, status="in-progress")],
        date(2026, 1, 5),
        {"fills_used": 0, "run_out_on": None},
    ),
    (
        "dispense from another hospital's pharmacy, no reference: matched by medication code",
        [request()],
        [dispense("2026-01-02", days=30, rx=None, hospital=HOSPITAL_B)],
        date(2026, 1, 30),
        {"fills_used": 1, "state": "refill-due", "hospital_id": HOSPITAL_A},
    ),
    (
        "another hospital's dispense goes to the active order, not a stopped one",
        [request("old", status="stopped", authored="2026-01-01"), request(authored="2026-01-01")],
        [dispense("2026-01-02", days=30, rx=None, hospital=HOSPITAL_B)],
        date(2026, 1, 5),
        None,
    ),
    (
        "dispense from another hospital naming the prescription by id",
        [request()],
        [dispense("2026-01-02", days=30, hospital=HOSPITAL_B)],
        date(2026, 1, 5),
        {"fills_used": 1},
    ),
    (
        "dispenseInterval: earliest next fill",
        [request(interval_days=25)],
        [dispense("2026-01-02", days=30)],
        date(2026, 1, 5),
        {"next_fill_earliest": date(2026, 1, 27)},
    ),
    (
        "a plan is no prescription: not listed",
        [request(intent="plan")],
        [],
        date(2026, 1, 5),
        None,
    ),
]


@pytest.mark.parametrize(
    ("requests", "dispenses", "today", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_refill_rules(requests, dispenses, today, expected):
    medications = compute_medications(requests, dispenses, today=today, zone=SHANGHAI)
    if expected is None and len(requests) > 1:
        fills = {m.request_id: m.fills_used for m in medications}
        assert fills == {"old": 0, "rx1": 1}
        return
    if expected is None:
        assert medications == []
        return
    (medication,) = medications
    for field, value in expected.items():
        assert getattr(medication, field) == value, field


def test_hand_over_late_at_night_utc_is_the_next_day_in_shanghai():
    # 2026-01-02T17:30Z is 01:30 on the 3rd in Shanghai: the supply runs a day later.
    meds = compute_medications(
        [request()],
        [dispense("2026-01-02T17:30:00Z", days=30)],
        today=date(2026, 1, 5),
        zone=SHANGHAI,
    )
    assert meds[0].last_filled_on == date(2026, 1, 3)
    assert meds[0].run_out_on == date(2026, 2, 2)
    meds = compute_medications(
        [request()],
        [dispense("2026-01-02T17:30:00Z", days=30)],
        today=date(2026, 1, 5),
        zone=NEW_YORK,
    )
    assert meds[0].run_out_on == date(2026, 2, 1)


def test_dst_change_does_not_shift_the_run_out_day():
    # New York springs forward on 2026-03-08: 30 days from 23:30 on the 1st is
    # still the 31st, not a day early because one day had 23 hours.
    meds = compute_medications(
        [request()],
        [dispense("2026-03-01T23:30:00-05:00", days=30)],
        today=date(2026, 3, 10),
        zone=NEW_YORK,
    )
    assert meds[0].run_out_on == date(2026, 3, 31)
    # And across the autumn change.
    meds = compute_medications(
        [request()],
        [dispense("2026-10-31T23:30:00-04:00", days=7)],
        today=date(2026, 11, 2),
        zone=NEW_YORK,
    )
    assert meds[0].run_out_on == date(2026, 11, 7)


def test_lead_days_come_from_the_caller():
    args = ([request()], [dispense("2026-01-02", days=30)])
    assert (
        compute_medications(*args, today=date(2026, 1, 22), zone=SHANGHAI, lead_days=10)[0].state
        == "refill-due"
    )
    assert compute_medications(*args, today=date(2026, 1, 22), zone=SHANGHAI)[0].state == "on-track"


def test_new_version_of_a_request_recomputes_in_place():
    old = request(repeats=0)
    renewed = SourcedResource(
        old.record_id,
        old.hospital_id,
        {
            **old.resource,
            "dispenseRequest": {**old.resource["dispenseRequest"], "numberOfRepeatsAllowed": 5},
        },
    )
    before = compute_medications(
        [old], [dispense("2026-01-02", days=30)], today=date(2026, 1, 5), zone=SHANGHAI
    )
    after = compute_medications(
        [renewed], [dispense("2026-01-02", days=30)], today=date(2026, 1, 5), zone=SHANGHAI
    )
    assert before[0].state == "renewal-needed"
    assert after[0].state == "on-track" and after[0].refills_remaining == 5
    assert before[0].record_id == after[0].record_id


@pytest.mark.parametrize(
    ("value", "days"),
    [({"value": 2, "code": "wk"}, 14), ({"value": 1, "unit": "month"}, 30), ({"value": 3}, 3),
     ({"value": -1, "code": "d"}, None), ({"value": 5, "code": "furlong"}, None), (None, None)],
)  # fmt: skip
def test_durations(value, days):
    assert duration_days(value) == days


def test_daily_dose_from_hours_and_codes():
    every_six_hours = [{"timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}}, "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablets"}}]}]  # fmt: skip
    assert daily_dose(every_six_hours) == (8.0, "tablet")
    bid = [{"timing": {"code": {"coding": [{"code": "BID"}]}}, "doseAndRate": [{"doseQuantity": {"value": 1}}]}]  # fmt: skip
    assert daily_dose(bid) == (2.0, None)
    assert daily_dose([{"text": "as needed"}]) is None


def test_dose_in_milligrams_does_not_divide_a_quantity_in_tablets():
    meds = compute_medications(
        [
            request(
                supply_days=None,
                dosage=[
                    {
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                        "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
                    }
                ],
            )
        ],
        [dispense("2026-01-02", quantity=30)],
        today=date(2026, 1, 5),
        zone=SHANGHAI,
    )
    assert meds[0].run_out_on is None


def test_local_date_forms():
    assert local_date("2026-01-02", SHANGHAI) == date(2026, 1, 2)
    assert local_date("2026-01-02T10:00:00", SHANGHAI) == date(2026, 1, 2)
    assert local_date("2026", SHANGHAI) is None
    assert local_date("not a date!", SHANGHAI) is None


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_hl7_examples_prescription_and_its_dispense():
    # The HL7 examples: medrx0318 (vancomycin) and meddisp0301, which is still
    # in progress and so no fill yet; meddisp0318-style completed ones count.
    requests = [SourcedResource(uuid5(HOSPITAL_A, p.name), HOSPITAL_A, _load(p)) for p in sorted(DATA.glob("hl7/MedicationRequest-*.json"))]  # fmt: skip
    dispenses = [SourcedResource(uuid5(HOSPITAL_A, p.name), HOSPITAL_A, _load(p)) for p in sorted(DATA.glob("hl7/MedicationDispense-*.json"))]  # fmt: skip
    meds = {m.request_id: m for m in compute_medications(requests, dispenses, today=date(2015, 1, 20), zone=SHANGHAI)}  # fmt: skip
    assert meds, "the HL7 examples hold orders"
    assert all(m.state in {"on-track", "refill-due", "renewal-needed", "expired", "stopped"} for m in meds.values())  # fmt: skip
    # meddisp0301 is in progress: it does not count as a fill of medrx0318.
    completed_for_0318 = [d for d in dispenses if d.resource.get("status") == "completed" and any(a.get("reference", "").endswith("/medrx0318") for a in d.resource.get("authorizingPrescription", []))]  # fmt: skip
    assert meds["medrx0318"].fills_used == len(completed_for_0318)
    # Every completed dispense that names a listed order is counted against it.
    counted = sum(m.fills_used for m in meds.values())
    naming = [d for d in dispenses if d.resource.get("status") == "completed" and d.resource.get("whenHandedOver") and any(a.get("reference", "").rsplit("/", 1)[-1] in meds for a in d.resource.get("authorizingPrescription", []))]  # fmt: skip
    assert counted >= len(naming)


def test_synthea_bundle_medications():
    bundle = _load(DATA / "synthea" / "synthea-patient-bundle.json")
    requests = [SourcedResource(uuid5(HOSPITAL_A, e["resource"]["id"]), HOSPITAL_A, e["resource"]) for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]  # fmt: skip
    meds = compute_medications(requests, [], today=date(2026, 1, 5), zone=SHANGHAI)
    assert len(meds) == 10
    states = sorted(m.state for m in meds)
    assert states.count("stopped") == 9
    active = next(m for m in meds if m.status == "active")
    assert active.state == "on-track" and active.fills_used == 0 and active.name
