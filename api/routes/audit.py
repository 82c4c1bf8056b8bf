"""The patient's access history, and a check of its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.params import QueryParameter

from api.current_patient import CurrentPatient
from api.deps import ServicesDep
from domain.audit.chain import verify_chain


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
    services: ServicesDep,
    patient: CurrentPatient,
    cursor: Annotated[
        str | None,
        QueryParameter(description="nextCursor from the previous page", pattern=r"^\d{1,19}$"),
    ] = None,
    limit: Annotated[int, QueryParameter(description="page size", ge=1, le=200)] = 50,
) -> AuditPage:
    rows = await services.audit.page(patient.patient_id, int(cursor) if cursor else None, limit + 1)
    page = rows[:limit]
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
        for r in page
    ]
    return AuditPage(items=items, next_cursor=str(page[-1].id) if len(rows) > limit else None)


@get(
    "/v1/audit/verify",
    operation_id="verifyAuditChain",
    summary="Check the hash chain of the patient's audit log; names the first bad entry",
    tags=["audit"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def verify_audit(services: ServicesDep, patient: CurrentPatient) -> AuditVerification:
    chain = await services.audit.chain(patient.patient_id)
    broken = verify_chain(chain)
    return AuditVerification(
        valid=broken is None,
        checked=len(chain),
        first_bad_entry=ChainBreakOut(
            id=broken.event_id, sequence=broken.sequence, problem=broken.problem
        )
        if broken
        else None,
    )
