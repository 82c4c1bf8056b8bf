"""Rules for a hospital's deliveries: rate limits, what a delivery yields, and
the reply stored to answer a redelivery the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from domain.errors import Conflict, DomainError, Forbidden, InvalidInput
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


class StoredReply(msgspec.Struct, frozen=True):
    """What a delivery was answered, kept to answer a redelivery the same way."""

    status: int
    media_type: str
    body: bytes


class ParkedPush(msgspec.Struct, frozen=True):
    delivery_id: str
    bundle: dict[str, Any]


class LinkCompleted(msgspec.Struct, frozen=True):
    parked_applied: int
    results: tuple[IngestResult, ...] = ()


class PushParked(msgspec.Struct, frozen=True):
    unknown_elements: tuple[str, ...] = ()


DeliveryOutcome = LinkCompleted | IngestResult | PushParked


class ReplyRenderer(Protocol):
    """The api layer's rendering of an outcome or a refusal, stored for redeliveries."""

    def success(self, outcome: DeliveryOutcome) -> StoredReply: ...

    def refusal(self, error: DomainError) -> StoredReply: ...


# Refusals that are answers about the delivery itself: stored, so a redelivery
# gets the same answer. Anything else (rate limits, failures) is not stored and
# the hospital may retry.
STORED_REFUSALS = (InvalidInput, Forbidden, Conflict)
