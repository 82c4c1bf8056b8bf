"""FHIR R4 data types and date formats, as msgspec shapes (see resources.py)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import msgspec


class FhirDate(str):
    """A FHIR `date`: YYYY, YYYY-MM or YYYY-MM-DD."""


class FhirDateTime(str):
    """A FHIR `dateTime`: a date, or a date and time with seconds. R4 requires a zone
    when a time is given; senders that leave it out are read as UTC."""


class FhirInstant(str):
    """A FHIR `instant`: a full date and time. A missing zone is read as UTC, as for
    dateTime, because real feeds do send that."""


# re.ASCII: \d must not match other scripts' digits, which int() would accept.
_DATE_TIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)


# Each date is parsed twice (checked while converting, then read for the index),
# and a bundle repeats many (an encounter's results share one): remember a few.
@functools.lru_cache(maxsize=4096)
def parse_fhir_datetime(text: str, kind: type[str] = FhirDateTime) -> datetime | None:
    """The instant a FHIR date, dateTime or instant starts at, in UTC; None if `text`
    is not one (or names a day that does not exist, like 2021-02-30).

    A partial date ("2012", "2012-05") is the start of that year or month."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    has_time = parts["H"] is not None
    if kind is FhirDate and has_time:
        return None
    if kind is FhirInstant and not has_time:
        return None
    year = int(parts["y"])
    month = int(parts["m"] or 1)
    day = int(parts["d"] or 1)
    hour = int(parts["H"] or 0)
    minute = int(parts["M"] or 0)
    # FHIR allows a leap second (":60"); datetime does not, so it becomes :59.
    second = int(parts["S"] or 0)
    if second == 60:
        second = 59
    micro = int((parts["f"] or "0")[:6].ljust(6, "0"))
    zone = UTC
    tz = parts["tz"]
    if tz and tz != "Z":
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        if minutes > 59 or hours * 60 + minutes > 14 * 60:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-offset if tz[0] == "-" else offset)
    try:
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


_KIND_NAMES = {FhirDate: "date", FhirDateTime: "dateTime", FhirInstant: "instant"}


def decode_fhir_scalar(kind: type, value: Any) -> Any:
    """`dec_hook` for msgspec.convert: checks and builds the FHIR date types."""
    if kind in _KIND_NAMES:
        name = _KIND_NAMES[kind]
        if not isinstance(value, str):
            raise TypeError(f"must be a FHIR {name} string, got {type(value).__name__}")
        if parse_fhir_datetime(value, kind) is None:
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise ValueError(f"is not a valid FHIR {name}: {shown!r}")
        return kind(value)
    raise NotImplementedError(f"no decoder for {kind!r}")


class Element(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """Base of every declared shape: camelCase names as in FHIR JSON, unknown
    elements allowed."""


# --- data types -----------------------------------------------------------------


class Coding(Element, kw_only=True):
    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    user_selected: bool | None = None


class CodeableConcept(Element, kw_only=True):
    coding: list[Coding] | None = None
    text: str | None = None


class Reference(Element, kw_only=True):
    reference: str | None = None
    type: str | None = None
    display: str | None = None


class Quantity(Element, kw_only=True):
    value: float | None = None
    comparator: Literal["<", "<=", ">=", ">"] | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None


class Period(Element, kw_only=True):
    start: FhirDateTime | None = None
    end: FhirDateTime | None = None


class Range(Element, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None


class Ratio(Element, kw_only=True):
    numerator: Quantity | None = None
    denominator: Quantity | None = None


class Timing(Element, kw_only=True):
    event: list[FhirDateTime] | None = None


class Attachment(Element, kw_only=True):
    content_type: str | None = None
    language: str | None = None
    data: str | None = None
    url: str | None = None
    size: int | None = None
    hash: str | None = None
    title: str | None = None
    creation: FhirDateTime | None = None


class Annotation(Element, kw_only=True):
    text: str


class HumanName(Element, kw_only=True):
    text: str | None = None
    family: str | None = None
    given: list[str] | None = None


class Dosage(Element, kw_only=True):
    sequence: int | None = None
    text: str | None = None


class Meta(Element, kw_only=True):
    version_id: str | None = None
    last_updated: FhirInstant | None = None
    source: str | None = None
    profile: list[str] | None = None
    security: list[Coding] | None = None
    tag: list[Coding] | None = None
