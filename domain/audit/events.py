"""Audit events: who did what to whose data, when, from where, and with what outcome.

Events follow the spirit of FHIR AuditEvent / IHE BALP. They never carry health
values, tokens or passwords: only ids, action names and outcomes. Once sealed,
each event is a leaf of the service's transparency log (domain/audit/log.py), so an
edit, deletion or reordering made behind the application's back is detectable
and the patient can check it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

Outcome = Literal["success", "denied", "failure"]
ActorType = Literal["patient", "share", "hospital", "system", "anonymous"]

# Purpose of use (HL7 v3 PurposeOfUse): the patient acting on their own record,
# a clinician treating them, or the system operating the service.
PURPOSE_PATIENT_REQUEST = "PATRQT"
PURPOSE_TREATMENT = "TREAT"
PURPOSE_OPERATIONS = "HOPERAT"


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
    """An event as stored: with its leaf index once the sequencer has sealed it."""

    id: int
    recorded_at: datetime
    event: AuditEvent
    salt: bytes
    leaf_index: int | None = None
    # Erased account: personal fields blanked; the stored leaf hash stands for it.
    erased: bool = False
