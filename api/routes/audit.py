"""The patient's access history, and a check of its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.params import QueryParameter

from api.current_patient import CurrentPatient
from api.deps import AuditHistoryDep, RequestContextDep
from domain.access import PatientActor


class AuditEntryOut(msgspec.Struct, rename="camel"):
    id: int
    sequence: int
    at: datetime
    action: str
    outcome: str
    actor_type: str
    actor_id: str | None
    resource_type: str | None
    resource_ids: list[str]
    purpose: str
    reason: str | None
    client_address: str | None
    user_agent: str | None
    request_id: str | None


class AuditPage(msgspec.Struct, rename="camel"):
    items: list[AuditEntryOut]
    next_cursor: str | None


class ChainBreakOut(msgspec.Struct, rename="camel"):
    id: int
    sequence: int
    problem: str


class AuditVerification(msgspec.Struct, rename="camel"):
    valid: bool
    checked: int
    first_bad_entry: ChainBreakOut | None


@get(
    "/v1/audit",
    operation_id="listAuditEvents",
    summary="Who did what with the patient's record, and when; newest first",
    tags=["audit"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
)
async def list_audit(
    audit_history: AuditHistoryDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    cursor: Annotated[
        str | None,
        QueryParameter(description="nextCursor from the previous page", pattern=r"^\d{1,19}$"),
    ] = None,
    limit: Annotated[int, QueryParameter(description="page size", ge=1, le=200)] = 50,
) -> AuditPage:
    page = await audit_history.page(
        PatientActor(patient.patient_id),
        before_id=int(cursor) if cursor else None,
        limit=limit,
        context=context,
    )
    items = [
        AuditEntryOut(
            id=r.id,
            sequence=r.sequence,
            at=r.recorded_at,
            action=r.event.action,
            outcome=r.event.outcome,
            actor_type=r.event.actor_type,
            actor_id=r.event.actor_id,
            resource_type=r.event.resource_type,
            resource_ids=list(r.event.resource_ids),
            purpose=r.event.purpose,
            reason=r.event.reason,
            client_address=r.event.context.client_address,
            user_agent=r.event.context.user_agent,
            request_id=r.event.context.request_id,
        )
        for r in page.items
    ]
    next_cursor = str(page.next_before_id) if page.next_before_id is not None else None
    return AuditPage(items=items, next_cursor=next_cursor)


@get(
    "/v1/audit/verify",
    operation_id="verifyAuditChain",
    summary="Check the hash chain of the patient's audit log; names the first bad entry",
    tags=["audit"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def verify_audit(
    audit_history: AuditHistoryDep, patient: CurrentPatient, context: RequestContextDep
) -> AuditVerification:
    check = await audit_history.verify(PatientActor(patient.patient_id), context=context)
    broken = check.first_break
    return AuditVerification(
        valid=broken is None,
        checked=check.checked,
        first_bad_entry=ChainBreakOut(
            id=broken.event_id, sequence=broken.sequence, problem=broken.problem
        )
        if broken
        else None,
    )
