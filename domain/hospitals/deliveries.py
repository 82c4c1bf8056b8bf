"""Rules for a hospital's deliveries: rate limits, what a delivery asks for (a
link, a push), what it yields, and which refusals are its answer. The reply itself
is the api's rendering, kept as opaque bytes to answer a redelivery the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from domain.errors import Conflict, Forbidden, InvalidInput
from domain.fhir.bundle import ParsedEntry
from domain.fhir.validation import EntryProblem
from domain.records.record import IngestResult


class DeliveryIdReused(Conflict):
    kind = "webhook-id-reused"
    title = "This webhook-id was already used for a different body"


class WebhookLimits(msgspec.Struct, frozen=True, kw_only=True):
    # Deliveries accepted per hospital per window (fixed window).
    deliveries_per_window: int = 600
    window_seconds: int = 60
    # Wrong link codes a hospital may send per hour before it is told to wait.
    code_failures_per_hour: int = 20


CODE_FAILURE_WINDOW = timedelta(hours=1)


def window_start(now: datetime, seconds: int) -> datetime:
    """The fixed window `now` falls in."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


class LinkRequest(msgspec.Struct, frozen=True):
    """`patient.linked`: the code the patient showed, and the hospital's MRN."""

    code: str
    patient_ref: str


class PushRequest(msgspec.Struct, frozen=True):
    """`records.push`: a FHIR Bundle for the patient behind an MRN."""

    patient_ref: str
    bundle: dict[str, Any]


class ValidatedPush(msgspec.Struct, frozen=True):
    """A push whose bundle validated, before any transaction opened."""

    patient_ref: str
    bundle: dict[str, Any]
    entries: list[ParsedEntry]
    # Elements FHIR R4 does not define (kept as received, named in the reply).
    unknown_elements: tuple[str, ...] = ()


class InvalidPush(msgspec.Struct, frozen=True):
    """A push whose bundle did not validate: refused, and the refusal is kept as
    the answer to this webhook-id like any other."""

    patient_ref: str
    problems: tuple[EntryProblem, ...]


PreparedDelivery = LinkRequest | ValidatedPush | InvalidPush


class ParkedPush(msgspec.Struct, frozen=True):
    delivery_id: str
    bundle: dict[str, Any]


class LinkCompleted(msgspec.Struct, frozen=True):
    parked_applied: int
    results: tuple[IngestResult, ...] = ()


class PushParked(msgspec.Struct, frozen=True):
    unknown_elements: tuple[str, ...] = ()


DeliveryOutcome = LinkCompleted | IngestResult | PushParked


# Refusals that are answers about the delivery itself: stored, so a redelivery
# gets the same answer. Anything else (rate limits, failures) is not stored and
# the hospital may retry.
STORED_REFUSALS = (InvalidInput, Forbidden, Conflict)
