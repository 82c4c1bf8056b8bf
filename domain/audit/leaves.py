"""What a leaf of the audit transparency log commits to, and the shapes the log's
store hands back.

One log for the whole service: a leaf is one audit event of any patient, in the
order the sequencer sealed it. A leaf's bytes are a canonical encoding of the
event with its database id and a random salt; its hash is RFC 9162's leaf hash of
those bytes. The id pins the event to its row (swapping two rows' contents shows);
the salt keeps a neighbour's hash, seen in a proof, from being matched against
guessed contents."""

from __future__ import annotations

from datetime import UTC

import msgspec

from domain.audit.events import RecordedAuditEvent
from domain.audit.merkle import leaf_hash

LEAF_FORMAT = "phr-audit-event/1"


def leaf_entry(stored: RecordedAuditEvent) -> bytes:
    event = stored.event
    fields = [
        LEAF_FORMAT,
        stored.id,
        stored.recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
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
        stored.salt.hex(),
    ]
    return msgspec.json.encode(fields)


def event_leaf_hash(stored: RecordedAuditEvent) -> bytes:
    """The leaf hash of the event as stored now (an edited row gives another)."""
    return leaf_hash(leaf_entry(stored))


class StoredCheckpoint(msgspec.Struct, frozen=True):
    size: int
    root_hash: bytes
    note: str


class PatientLeaf(msgspec.Struct, frozen=True):
    """A leaf the log says is the patient's, with the event row it points at (None
    when the row is gone)."""

    leaf_index: int
    stored_hash: bytes
    event: RecordedAuditEvent | None
