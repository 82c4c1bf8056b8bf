"""`authorize` inside a use case's unit of work: the one way every use case asks
the access policy, so a refusal is always audited (and committed) before it is
raised. Apart from `domain.access` because it needs the ports, which name Permit."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.access import AccessRefused, Action, ActionNotAllowed, Actor, Permit, authorize
from domain.audit.events import RequestContext
from domain.consents.consent import Consent
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
