"""Reading supply from FHIR: durations, daily doses and quantities.

FHIR gives a supply in several ways (a dispense's `daysSupply`, a quantity and
a dose, a request's `expectedSupplyDuration`); each reader answers None when
the resource does not say, so the engine can fall back to the next source."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

# UCUM and the spellings hospitals actually send.
_DAYS_PER_UNIT = {
    "d": 1.0,
    "day": 1.0,
    "days": 1.0,
    "wk": 7.0,
    "week": 7.0,
    "weeks": 7.0,
    "mo": 30.0,
    "month": 30.0,
    "months": 30.0,
    "a": 365.0,
    "year": 365.0,
    "years": 365.0,
    "h": 1 / 24,
    "hour": 1 / 24,
    "hours": 1 / 24,
}

# Timing abbreviations (v3-GTSAbbreviation) as administrations per day.
_PER_DAY_CODES = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
    "Q12H": 2.0,
    "QOD": 0.5,
    "WK": 1 / 7,
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def duration_days(quantity: Any) -> float | None:
    """A Duration (or a Quantity meant as one) in days."""
    if not isinstance(quantity, dict):
        return None
    value = _number(quantity.get("value"))
    unit = str(quantity.get("code") or quantity.get("unit") or "d").strip().lower()
    per = _DAYS_PER_UNIT.get(unit)
    if value is None or per is None:
        return None
    return value * per


def _unit(quantity: dict) -> str | None:
    unit = quantity.get("code") or quantity.get("unit")
    if not isinstance(unit, str) or not unit.strip():
        return None
    unit = unit.strip().lower()
    # "tablet" and "tablets", "TAB" and "tab" are one unit.
    return unit[:-1] if unit.endswith("s") and len(unit) > 2 else unit


def _per_day(timing: Any) -> float | None:
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict):
        frequency = _number(repeat.get("frequencyMax") or repeat.get("frequency")) or 1.0
        period = _number(repeat.get("period"))
        unit = repeat.get("periodUnit")
        days = _DAYS_PER_UNIT.get(unit) if isinstance(unit, str) else None
        if period is not None and days is not None:
            return frequency / (period * days)
    code = timing.get("code")
    if isinstance(code, dict):
        for coding in code.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code") in _PER_DAY_CODES:
                return _PER_DAY_CODES[coding["code"]]
    return None


def daily_dose(dosage_instructions: Any) -> tuple[float, str | None] | None:
    """The amount taken per day and its unit, summed over the instructions
    that say both how much and how often; None if none does."""
    if not isinstance(dosage_instructions, list):
        return None
    total = 0.0
    unit: str | None = None
    for dosage in dosage_instructions:
        if not isinstance(dosage, dict):
            continue
        per_day = _per_day(dosage.get("timing"))
        for dose_and_rate in dosage.get("doseAndRate") or []:
            if not isinstance(dose_and_rate, dict):
                continue
            dose = dose_and_rate.get("doseQuantity")
            if not isinstance(dose, dict):
                dose_range = dose_and_rate.get("doseRange")
                dose = dose_range.get("high") if isinstance(dose_range, dict) else None
            if not isinstance(dose, dict):
                continue
            amount = _number(dose.get("value"))
            if amount is None or per_day is None:
                continue
            this_unit = _unit(dose)
            if unit is not None and this_unit is not None and this_unit != unit:
                return None
            unit = unit or this_unit
            total += amount * per_day
            break
    return (total, unit) if total > 0 else None


def days_from_quantity(quantity: Any, dose: tuple[float, str | None] | None) -> float | None:
    """quantity ÷ daily dose, when both are in the same unit (or either has none)."""
    if not isinstance(quantity, dict) or dose is None:
        return None
    value = _number(quantity.get("value"))
    if value is None:
        return None
    amount, dose_unit = dose
    quantity_unit = _unit(quantity)
    if dose_unit is not None and quantity_unit is not None and dose_unit != quantity_unit:
        return None
    return value / amount


def local_date(value: Any, zone: ZoneInfo) -> date | None:
    """A FHIR date or dateTime as the calendar day it falls on in `zone`. A
    date alone is that day; an instant is converted; a dateTime without an
    offset is taken as local time already."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(zone).date()
