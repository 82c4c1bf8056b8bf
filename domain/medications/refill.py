"""The refill engine: from a patient's MedicationRequests and MedicationDispenses,
each medication's fills, refills remaining, run-out date, earliest next fill and
state. Pure: the caller passes the records and today's date in the patient's
time zone, so a scan and a read agree, and tests need no clock.

Dates are calendar days in the patient's zone: adding days to a date never
crosses a DST change by an hour, and "runs out today" means the patient's today."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from domain.medications.supply import (
    daily_dose,
    days_from_quantity,
    duration_days,
    local_date,
)

MedicationState = Literal["on-track", "refill-due", "renewal-needed", "expired", "stopped"]

# A request that is not an order (a proposal, a plan) is no prescription to refill.
_ORDER_INTENTS = frozenset(
    {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
)
_ENDED_STATUSES = frozenset({"stopped", "cancelled", "completed", "entered-in-error", "on-hold"})
DEFAULT_LEAD_DAYS = 3


class SourcedResource(msgspec.Struct, frozen=True):
    """A stored FHIR resource and who sent it (None: the patient)."""

    record_id: UUID
    hospital_id: UUID | None
    resource: dict[str, Any]


class Medication(msgspec.Struct, frozen=True, kw_only=True):
    record_id: UUID  # the MedicationRequest's record: stable across its versions
    hospital_id: UUID | None
    request_id: str
    name: str | None
    code: str | None
    status: str
    state: MedicationState
    fills_used: int
    refills_allowed: int
    refills_remaining: int
    last_filled_on: date | None
    run_out_on: date | None
    next_fill_earliest: date | None
    valid_until: date | None
    authored_on: date | None


def _reference_id(reference: Any) -> str | None:
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("urn:uuid:"):
        return text.removeprefix("urn:uuid:")
    return text.rstrip("/").rsplit("/", 1)[-1]


def _code(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    """(code key, display name) of the medication a request or dispense names."""
    concept = resource.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        # A contained Medication (`#med1`) carries the code.
        reference = resource.get("medicationReference")
        concept = None
        if isinstance(reference, dict):
            local = reference.get("reference")
            for contained in resource.get("contained") or []:
                if (
                    isinstance(contained, dict)
                    and isinstance(local, str)
                    and local == f"#{contained.get('id')}"
                ):
                    concept = contained.get("code")
            if concept is None:
                return None, reference.get("display")
    if not isinstance(concept, dict):
        return None, None
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            key = f"{coding.get('system') or ''}|{coding['code']}"
            return key, concept.get("text") or coding.get("display")
    return None, concept.get("text")


def _handed_over(dispense: dict[str, Any], zone: ZoneInfo) -> date | None:
    if dispense.get("status", "completed") != "completed":
        return None
    return local_date(dispense.get("whenHandedOver"), zone) or local_date(
        dispense.get("whenPrepared"), zone
    )


def _fill_days(dispense: dict[str, Any], request: dict[str, Any]) -> float | None:
    """How many days one fill lasts: the dispense's daysSupply; else its quantity
    ÷ the daily dose (its own instructions, else the request's); else the
    request's expected supply duration; else the request's quantity ÷ dose."""
    dispense_request = request.get("dispenseRequest") or {}
    dose = daily_dose(dispense.get("dosageInstruction")) or daily_dose(
        request.get("dosageInstruction")
    )
    return (
        duration_days(dispense.get("daysSupply"))
        or days_from_quantity(dispense.get("quantity"), dose)
        or duration_days(dispense_request.get("expectedSupplyDuration"))
        or days_from_quantity(dispense_request.get("quantity"), dose)
    )


def _assign_dispenses(
    requests: list[SourcedResource], dispenses: Iterable[SourcedResource]
) -> dict[UUID, list[SourcedResource]]:
    """Which request each dispense fills: the one its authorizingPrescription
    names (from the same hospital first: ids are only unique per source), else,
    for a pharmacy elsewhere that cannot name it, the order for the same
    medication code written on or before the hand-over (active first, latest)."""
    by_id: dict[str, list[SourcedResource]] = {}
    for request in requests:
        by_id.setdefault(str(request.resource.get("id")), []).append(request)
    assigned: dict[UUID, list[SourcedResource]] = {r.record_id: [] for r in requests}
    for dispense in dispenses:
        target: SourcedResource | None = None
        for reference in dispense.resource.get("authorizingPrescription") or []:
            candidates = by_id.get(_reference_id(reference) or "", [])
            same_source = [c for c in candidates if c.hospital_id == dispense.hospital_id]
            if same_source or candidates:
                target = (same_source or candidates)[0]
                break
        if target is None:
            code, _ = _code(dispense.resource)
            handed = str(dispense.resource.get("whenHandedOver") or "")
            matches = [
                r
                for r in requests
                if code is not None
                and _code(r.resource)[0] == code
                and str(r.resource.get("authoredOn") or "")[:10] <= (handed[:10] or "9999")
            ]
            if matches:
                # An active order before a stopped one, then the latest written.
                target = max(
                    matches,
                    key=lambda r: (
                        r.resource.get("status") == "active",
                        str(r.resource.get("authoredOn") or ""),
                    ),
                )
        if target is not None:
            assigned[target.record_id].append(dispense)
    return assigned


def _state(
    *,
    status: str,
    today: date,
    lead_days: int,
    fills_used: int,
    refills_remaining: int,
    run_out: date | None,
    valid_until: date | None,
) -> MedicationState:
    if status in _ENDED_STATUSES:
        return "stopped"
    if valid_until is not None and today > valid_until:
        # The prescription can no longer be filled: renew it while supply lasts.
        return "renewal-needed" if run_out is not None and run_out > today else "expired"
    if fills_used > 0 and refills_remaining == 0:
        return "renewal-needed"
    if valid_until is not None and run_out is not None and valid_until < run_out:
        return "renewal-needed"
    if run_out is not None and (run_out - today).days <= lead_days:
        return "refill-due"
    return "on-track"


def compute_medication(
    request: SourcedResource,
    dispenses: list[SourcedResource],
    *,
    today: date,
    zone: ZoneInfo,
    lead_days: int = DEFAULT_LEAD_DAYS,
) -> Medication:
    resource = request.resource
    dispense_request = resource.get("dispenseRequest")
    if not isinstance(dispense_request, dict):
        dispense_request = {}
    repeats = dispense_request.get("numberOfRepeatsAllowed")
    refills_allowed = repeats if isinstance(repeats, int) and repeats >= 0 else 0
    fills = sorted(
        ((day, d) for d in dispenses if (day := _handed_over(d.resource, zone)) is not None),
        key=lambda fill: (fill[0], str(fill[1].record_id)),
    )
    # A fill picked up early (or two overlapping) starts when the previous
    # supply ends: the patient does not take both at once.
    run_out: date | None = None
    for handed, dispense in fills:
        days = _fill_days(dispense.resource, resource)
        if days is None:
            # No source says how long this fill lasts: the current supply's end is unknown.
            run_out = None
            continue
        start = max(handed, run_out) if run_out is not None else handed
        run_out = start + timedelta(days=math.ceil(days))
    fills_used = len(fills)
    refills_remaining = max(0, refills_allowed - max(0, fills_used - 1))
    last_filled = fills[-1][0] if fills else None
    interval = duration_days(dispense_request.get("dispenseInterval"))
    next_fill: date | None = None
    if fills_used == 0 or refills_remaining > 0:
        if last_filled is None:
            next_fill = local_date(resource.get("authoredOn"), zone)
        else:
            next_fill = last_filled + timedelta(days=math.ceil(interval or 0))
    validity = dispense_request.get("validityPeriod")
    valid_until = local_date(validity.get("end"), zone) if isinstance(validity, dict) else None
    status = str(resource.get("status") or "unknown")
    code, name = _code(resource)
    return Medication(
        record_id=request.record_id,
        hospital_id=request.hospital_id,
        request_id=str(resource.get("id") or ""),
        name=name,
        code=code,
        status=status,
        state=_state(
            status=status,
            today=today,
            lead_days=lead_days,
            fills_used=fills_used,
            refills_remaining=refills_remaining,
            run_out=run_out,
            valid_until=valid_until,
        ),
        fills_used=fills_used,
        refills_allowed=refills_allowed,
        refills_remaining=refills_remaining,
        last_filled_on=last_filled,
        run_out_on=run_out,
        next_fill_earliest=next_fill,
        valid_until=valid_until,
        authored_on=local_date(resource.get("authoredOn"), zone),
    )


def compute_medications(
    requests: Iterable[SourcedResource],
    dispenses: Iterable[SourcedResource],
    *,
    today: date,
    zone: ZoneInfo,
    lead_days: int = DEFAULT_LEAD_DAYS,
) -> list[Medication]:
    """Every prescription (order intent) with its computed state, newest first."""
    orders = [
        r
        for r in requests
        if r.resource.get("resourceType") == "MedicationRequest"
        and r.resource.get("intent", "order") in _ORDER_INTENTS
    ]
    assigned = _assign_dispenses(orders, dispenses)
    medications = [
        compute_medication(r, assigned[r.record_id], today=today, zone=zone, lead_days=lead_days)
        for r in orders
    ]
    medications.sort(key=lambda m: (m.authored_on or date.min, str(m.record_id)), reverse=True)
    return medications
