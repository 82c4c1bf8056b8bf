"""The audit log's hash chain: each row's hash covers its content and the
previous row's hash, so an edit or a deletion anywhere shows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

import msgspec

from domain.audit.events import AuditEvent, RecordedAuditEvent

GENESIS_HASH = bytes(32)


def canonical_bytes(
    event: AuditEvent, recorded_at: datetime, sequence: int, previous_hash: bytes
) -> bytes:
    """The exact bytes an event's hash covers. Field order is fixed and timestamps
    are UTC with microseconds, so the same event always encodes the same way."""
    fields = [
        sequence,
        recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        event.action,
        event.outcome,
        event.actor_type,
        event.actor_id,
        str(event.patient_id) if event.patient_id else None,
        event.resource_type,
        list(event.resource_ids),
        event.purpose,
        event.reason,
        event.context.client_address,
        event.context.user_agent,
        event.context.request_id,
        previous_hash.hex(),
    ]
    return msgspec.json.encode(fields)


def chain_hash(
    event: AuditEvent, recorded_at: datetime, sequence: int, previous_hash: bytes
) -> bytes:
    return hashlib.sha256(canonical_bytes(event, recorded_at, sequence, previous_hash)).digest()


class ChainBreak(msgspec.Struct, frozen=True):
    event_id: int
    sequence: int
    problem: Literal["hash-mismatch", "broken-link", "sequence-gap"]


def verify_chain(events: list[RecordedAuditEvent]) -> ChainBreak | None:
    """Walks one patient's events in sequence order; returns the first bad one."""
    previous = GENESIS_HASH
    expected_sequence = 1
    for stored in events:
        if stored.sequence != expected_sequence:
            return ChainBreak(stored.id, stored.sequence, "sequence-gap")
        if stored.previous_hash != previous:
            return ChainBreak(stored.id, stored.sequence, "broken-link")
        if (
            chain_hash(stored.event, stored.recorded_at, stored.sequence, stored.previous_hash)
            != stored.hash
        ):
            return ChainBreak(stored.id, stored.sequence, "hash-mismatch")
        previous = stored.hash
        expected_sequence += 1
    return None
