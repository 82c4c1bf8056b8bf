"""`authorize` inside a use case's unit of work: the one way every use case asks
the access policy, so a refusal is always audited (and committed) before it is
raised. Apart from `domain.access` because it needs the ports, which name Permit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from domain.access import (
    AccessRefused,
    Action,
    ActionNotAllowed,
    Actor,
    PatientActor,
    Permit,
    authorize,
)
from domain.audit.events import RequestContext
from domain.consents.consent import Consent
from domain.errors import AuthenticationFailed, NotFound
from domain.ports import AuditLog, UnitOfWork


async def authorize_audited(
    uow: UnitOfWork,
    audit: AuditLog,
    actor: Actor,
    action: Action,
    patient_id: UUID,
    *,
    now: datetime,
    context: RequestContext,
    consent: Consent | None = None,
    commit_refusal: bool = True,
) -> Permit:
    """`authorize` inside a use case's unit of work. A refusal is written to the
    audit log and committed before it is raised: refused looks are history too.

    `commit_refusal=False` is for a use case that answers a refusal itself and
    commits the answer with the refusal's row (a hospital's delivery)."""
    try:
        return authorize(actor, action, patient_id, now=now, consent=consent, context=context)
    except (AccessRefused, ActionNotAllowed) as refused:
        await audit.append(refused.audit)
        if commit_refusal:
            await uow.commit()
        raise


async def authorize_read(
    unit_of_work: Callable[[], UnitOfWork],
    audit: AuditLog,
    actor: Actor,
    action: Action,
    patient_id: UUID,
    *,
    now: datetime,
    context: RequestContext,
    consent: Consent | None = None,
) -> Permit:
    """The decision for a read whose audit row goes in with the read itself (one
    statement, see `RecordStore.get_audited`): only a refusal needs a unit of
    work of its own, committed before it is raised."""
    try:
        return authorize(actor, action, patient_id, now=now, consent=consent, context=context)
    except (AccessRefused, ActionNotAllowed) as refused:
        async with unit_of_work() as uow:
            await audit.append(refused.audit)
            await uow.commit()
        raise


def account_gone(actor: Actor) -> Exception:
    """What an audited read answers when its statement found the account (or the
    token's session) gone since the token was issued: the patient's token is no
    longer valid; anyone else sees nothing there."""
    if isinstance(actor, PatientActor):
        return AuthenticationFailed("The access token is not valid.")
    return NotFound("No record with this id.")
