"""The access policy: the one place that decides whether an actor may touch a
patient's health data, and the only place a `Permit` can be minted.

Stores take a Permit, never a bare patient id from a handler: no permit, no data.
Every decision yields the audit event that records it; the use case writes that
event in the same transaction as the read or write it describes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from domain.audit.events import (
    PURPOSE_OPERATIONS,
    PURPOSE_PATIENT_REQUEST,
    PURPOSE_TREATMENT,
    AuditEvent,
    RequestContext,
)
from domain.consents.consent import Consent, ConsentScope
from domain.errors import Forbidden, NotFound


class PatientActor(msgspec.Struct, frozen=True, tag="patient"):
    patient_id: UUID
    # The signed-in session the request came through, when the token names one:
    # a read whose one statement checks liveness checks this session, not only
    # the account, so an ended session stops reading at once.
    session_id: UUID | None = None


class ShareRecipient(msgspec.Struct, frozen=True, tag="share"):
    """Whoever holds a share link (and its passcode): a doctor, as far as we know."""

    share_id: UUID
    recipient: str


class HospitalActor(msgspec.Struct, frozen=True, tag="hospital"):
    hospital_id: UUID


class SystemActor(msgspec.Struct, frozen=True, tag="system"):
    job: str


Actor = PatientActor | ShareRecipient | HospitalActor | SystemActor

Action = Literal[
    "record.read",
    "record.list",
    "record.create",
    "record.ingest",
    "upload.create",
    "export.created",
    "imaging.list",
    "imaging.read",
    "consent.list",
    "consent.revoked",
    "link.created",
    "link.list",
    "link.read",
    "link.revoked",
    "link.completed",
    "account.erased",
    "audit.list",
    "audit.verified",
    "share.created",
    "share.list",
    "share.read",
    "share.revoked",
    "share.qr",
    "share.accesses",
    "share.manifest",
    "share.file",
    "medication.list",
    "notification.list",
    "notification.read",
    "notification.preferences",
    "device.registered",
    "device.list",
    "device.removed",
    "notification.created",
]

# What each kind of actor may ever do; anything else is refused before any
# consent is looked at.
_PATIENT_ACTIONS: frozenset[str] = frozenset(Action.__args__) - {
    "link.completed",
    "notification.created",
}  # type: ignore[attr-defined]
# imaging.read: the study viewer a share links to (DICOMweb through a token
# bound to the share's consent, so it ends with the share).
_SHARE_ACTIONS = frozenset(
    {"record.read", "record.list", "imaging.list", "imaging.read", "share.manifest", "share.file"}
)
_HOSPITAL_ACTIONS = frozenset({"record.ingest", "link.completed"})
_SYSTEM_ACTIONS = frozenset(
    {"record.list", "record.read", "record.ingest", "medication.list", "notification.created"}
)

_MINT = object()


class Permit:
    """Proof that the policy allowed `action` by `actor` on `patient_id`'s record.

    Only `authorize` can construct one; stores read `patient_id` and `scope` from it
    and nothing else decides whose rows they touch."""

    __slots__ = ("action", "actor", "audit", "patient_id", "scope")

    def __init__(
        self,
        mint: object,
        *,
        actor: Actor,
        action: Action,
        patient_id: UUID,
        scope: ConsentScope,
        audit: AuditEvent,
    ):
        if mint is not _MINT:
            raise TypeError("a Permit is minted only by domain.access.authorize")
        self.actor = actor
        self.action = action
        self.patient_id = patient_id
        self.scope = scope
        self.audit = audit

    def event(self, resource_type: str | None = None, *resource_ids: str) -> AuditEvent:
        """The success event for what was actually touched."""
        return self.audit.with_resources(resource_type, *resource_ids)

    def refusal(
        self, reason: str, resource_type: str | None = None, *resource_ids: str
    ) -> AuditEvent:
        return self.audit.with_resources(resource_type, *resource_ids).refused(reason)

    def __repr__(self) -> str:
        return f"Permit({self.action} by {self.actor!r} on {self.patient_id})"


class AccessRefused(NotFound):
    """A refusal that looks like absence: the caller learns nothing about
    whether the target exists. `audit` is the denial event to record."""

    def __init__(self, audit: AuditEvent, detail: str = "Not found"):
        super().__init__(detail)
        self.audit = audit


class ActionNotAllowed(Forbidden):
    def __init__(self, audit: AuditEvent, detail: str):
        super().__init__(detail)
        self.audit = audit


def _actor_identity(actor: Actor) -> tuple[str, str]:
    match actor:
        case PatientActor(patient_id=pid):
            return "patient", str(pid)
        case ShareRecipient(share_id=sid):
            return "share", str(sid)
        case HospitalActor(hospital_id=hid):
            return "hospital", str(hid)
        case SystemActor(job=job):
            return "system", job
    raise TypeError(f"unknown actor {actor!r}")


def _purpose(actor: Actor) -> str:
    match actor:
        case PatientActor():
            return PURPOSE_PATIENT_REQUEST
        case ShareRecipient():
            return PURPOSE_TREATMENT
        case _:
            return PURPOSE_OPERATIONS


def authorize(
    actor: Actor,
    action: Action,
    patient_id: UUID,
    *,
    now: datetime,
    consent: Consent | None = None,
    context: RequestContext,
) -> Permit:
    """Decide, in one ordered chain of checks, whether `actor` may do `action`
    on `patient_id`'s record. Raises AccessRefused / ActionNotAllowed (each with
    its denial audit event) or returns a Permit (with its success event).

    `consent` is the consent the actor relies on: the data-source consent for a
    hospital, the share's consent for a share recipient; patients need none."""
    actor_type, actor_id = _actor_identity(actor)
    event = AuditEvent(
        action=action,
        outcome="success",
        actor_type=actor_type,  # type: ignore[arg-type]
        actor_id=actor_id,
        patient_id=patient_id,
        purpose=_purpose(actor),
        context=context,
    )
    if isinstance(actor, ShareRecipient):
        # The patient reads "Dr. Zhang opened your share": the name the doctor
        # gave travels with the share id (the consent is checked on the id).
        event = msgspec.structs.replace(event, actor_id=f"{actor_id} {actor.recipient}")
    scope = ConsentScope()
    match actor:
        case PatientActor(patient_id=own):
            if action not in _PATIENT_ACTIONS:
                raise ActionNotAllowed(
                    event.refused("action-not-allowed"), "This action is not allowed."
                )
            if own != patient_id:
                # Audited in the caller's own chain: the victim's chain is not
                # the place for a stranger's probing, and we must not reveal it.
                raise AccessRefused(
                    msgspec.structs.replace(event, patient_id=own).refused("other-patient")
                )
        case ShareRecipient() | HospitalActor():
            allowed = _SHARE_ACTIONS if isinstance(actor, ShareRecipient) else _HOSPITAL_ACTIONS
            if action not in allowed:
                raise ActionNotAllowed(
                    event.refused("action-not-allowed"), "This action is not allowed."
                )
            expected_grantee = "share" if isinstance(actor, ShareRecipient) else "hospital"
            expected_kind = "share" if isinstance(actor, ShareRecipient) else "data-source"
            if (
                consent is None
                or consent.patient_id != patient_id
                or consent.kind != expected_kind
                or consent.grantee_type != expected_grantee
                or consent.grantee_id != actor_id
            ):
                raise AccessRefused(event.refused("no-consent"))
            status = consent.status_at(now)
            if status != "active" or now < consent.period_start:
                raise AccessRefused(
                    event.refused(f"consent-{status if status != 'active' else 'not-started'}")
                )
            scope = consent.scope
        case SystemActor():
            if action not in _SYSTEM_ACTIONS:
                raise ActionNotAllowed(
                    event.refused("action-not-allowed"), "This action is not allowed."
                )
    return Permit(
        _MINT, actor=actor, action=action, patient_id=patient_id, scope=scope, audit=event
    )


def authorize_each(
    actor: SystemActor,
    action: Action,
    patient_ids: list[UUID],
    *,
    now: datetime,
    context: RequestContext,
) -> list[Permit]:
    """`authorize` for a system job acting on many patients at once (a fan-out
    to thousands): a system actor's decision rests on the action alone, no
    consent and no patient, so it is taken once; each patient gets a Permit of
    their own, with their own success event."""
    if not patient_ids:
        return []
    first = authorize(actor, action, patient_ids[0], now=now, context=context)
    return [first] + [
        Permit(
            _MINT,
            actor=actor,
            action=action,
            patient_id=patient_id,
            scope=first.scope,
            audit=msgspec.structs.replace(first.audit, patient_id=patient_id),
        )
        for patient_id in patient_ids[1:]
    ]
