"""Audit events: who did what to whose data, when, from where, and with what outcome.

Events follow the spirit of FHIR AuditEvent / IHE BALP. They never carry health
values, tokens or passwords: only ids, action names and outcomes. Each patient's
events form a hash chain (every event stores its predecessor's hash and its own
over a canonical encoding), so an edit made behind the application's back is
detectable and the patient can check it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal, Protocol
from uuid import UUID

import msgspec

Outcome = Literal["success", "denied", "failure"]
ActorType = Literal["patient", "share", "hospital", "system", "anonymous"]

# Purpose of use (HL7 v3 PurposeOfUse): the patient acting on their own record,
# a clinician treating them, or the system operating the service.
PURPOSE_PATIENT_REQUEST = "PATRQT"
PURPOSE_TREATMENT = "TREAT"
PURPOSE_OPERATIONS = "HOPERAT"

GENESIS_HASH = bytes(32)


class RequestContext(msgspec.Struct, frozen=True):
    """Where a request came from. Filled by the api layer, carried into audit rows."""

    client_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


NO_REQUEST = RequestContext()


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    action: str  # noun.verb: record.read, share.revoked, auth.login
    outcome: Outcome
    actor_type: ActorType
    actor_id: str | None
    patient_id: UUID | None
    resource_type: str | None = None
    resource_ids: tuple[str, ...] = ()
    purpose: str = PURPOSE_PATIENT_REQUEST
    reason: str | None = None  # why a refusal or failure happened, as a short code
    context: RequestContext = NO_REQUEST

    def with_resources(self, resource_type: str | None, *ids: str) -> AuditEvent:
        return msgspec.structs.replace(self, resource_type=resource_type, resource_ids=tuple(ids))

    def refused(self, reason: str) -> AuditEvent:
        return msgspec.structs.replace(self, outcome="denied", reason=reason)

    def failed(self, reason: str) -> AuditEvent:
        return msgspec.structs.replace(self, outcome="failure", reason=reason)


class RecordedAuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored: with its place in the patient's chain."""

    id: int
    sequence: int
    recorded_at: datetime
    event: AuditEvent
    previous_hash: bytes
    hash: bytes


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


class AuditLog(Protocol):
    """Appends inside the caller's unit of work: if the append fails, the whole
    use case fails with it (fail closed)."""

    async def append(self, event: AuditEvent) -> None: ...
