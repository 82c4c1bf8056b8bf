"""The patient's access history and the transparency log that proves it: events
with their leaf index, the signed checkpoint, proofs an app checks itself, and a
yes/no verification for apps that want only that."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from litestar.params import QueryParameter

from api.current_patient import CurrentPatient
from api.deps import AuditHistoryDep, AuditTrailDep, RequestContextDep
from domain.access import PatientActor
from domain.audit.leaves import event_leaf_hash
from domain.audit.trail import PROOF_PAGE_MAX

# Tree sizes in queries stay within JSON's exact integers (a client's float
# parser, and a schema's bound, lose digits past 2**53).
MAX_TREE_SIZE = 2**53 - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuditEntryOut(msgspec.Struct, rename="camel"):
    id: int
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
    # Set once the sequencer has sealed the event into the log (within seconds).
    leaf_index: int | None
    # RFC 9162 leaf hash of the event as stored now (standard base64).
    leaf_hash: str


class AuditPage(msgspec.Struct, rename="camel"):
    items: list[AuditEntryOut]
    next_cursor: str | None


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
            leaf_index=r.leaf_index,
            leaf_hash=_b64(event_leaf_hash(r)),
        )
        for r in page.items
    ]
    next_cursor = str(page.next_before_id) if page.next_before_id is not None else None
    return AuditPage(items=items, next_cursor=next_cursor)


class AuditLogKey(msgspec.Struct, rename="camel"):
    origin: str
    # C2SP signed-note verifier key: <origin>+<hex key id>+<base64(0x01 || Ed25519 key)>
    verifier_key: str


@get(
    "/.well-known/phr-audit-log",
    operation_id="getAuditLogKey",
    summary="The audit log's origin and the public key its checkpoints are signed with",
    tags=["audit"],
)
async def audit_log_key(audit_trail: AuditTrailDep) -> Response[AuditLogKey]:
    trail = audit_trail
    return Response(
        AuditLogKey(origin=trail.origin, verifier_key=trail.verifier_key),
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get(
    "/v1/audit/checkpoint",
    operation_id="getAuditCheckpoint",
    summary="The latest signed checkpoint of the audit log (C2SP tlog-checkpoint signed note)",
    tags=["audit"],
    media_type="text/plain; charset=utf-8",
)
async def audit_checkpoint(audit_trail: AuditTrailDep) -> Response[str]:
    checkpoint = await audit_trail.checkpoint()
    return Response(
        checkpoint.note,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


class InclusionOut(msgspec.Struct, rename="camel"):
    leaf_index: int
    event_id: int
    leaf_hash: str
    path: list[str]


class AuditProofOut(msgspec.Struct, rename="camel"):
    # The signed note of the tree the proofs lead to (size `toSize`).
    checkpoint: str
    from_size: int
    to_size: int
    # RFC 9162 consistency proof from `fromSize` to `toSize`; empty when fromSize
    # is 0 or equals toSize; null when the stored tree cannot make one.
    consistency: list[str] | None
    # Inclusion proofs of the patient's events in the tree of `toSize`, oldest
    # first, one page of them.
    inclusions: list[InclusionOut]
    # Pass as `after` for the next page of inclusions; null on the last page.
    next_after: int | None


@get(
    "/v1/audit/proof",
    operation_id="getAuditProof",
    summary="Consistency proof between two tree sizes and inclusion proofs of the patient's events",
    tags=["audit"],
    raises=[NotAuthorizedException, NotFoundException, ValidationException],
    security=[{"bearer": []}],
)
async def audit_proof(
    audit_trail: AuditTrailDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    from_size: Annotated[
        int,
        QueryParameter(
            name="from",
            description="tree size of the checkpoint the app kept (0: none)",
            ge=0,
            le=MAX_TREE_SIZE,
        ),
    ] = 0,
    to_size: Annotated[
        int | None,
        QueryParameter(
            name="to",
            description="a published tree size; the latest by default",
            ge=0,
            # Declared again: the optional parameter's schema otherwise drops it.
            schema_extra={"minimum": 0},
            le=MAX_TREE_SIZE,
        ),
    ] = None,
    after: Annotated[
        int | None,
        QueryParameter(
            description="nextAfter from the previous page: inclusions of leaves after this index",
            ge=0,
            schema_extra={"minimum": 0},
            le=MAX_TREE_SIZE,
        ),
    ] = None,
    limit: Annotated[
        int, QueryParameter(description="inclusion proofs per page", ge=1, le=PROOF_PAGE_MAX)
    ] = 200,
) -> AuditProofOut:
    proof = await audit_trail.proof(
        PatientActor(patient.patient_id),
        from_size,
        to_size,
        after_index=-1 if after is None else after,
        limit=limit,
        context=context,
    )
    return AuditProofOut(
        checkpoint=proof.checkpoint.note,
        from_size=proof.from_size,
        to_size=proof.checkpoint.size,
        consistency=None if proof.consistency is None else [_b64(h) for h in proof.consistency],
        inclusions=[
            InclusionOut(
                leaf_index=i.leaf_index,
                event_id=i.event_id,
                leaf_hash=_b64(i.leaf_hash),
                path=[_b64(h) for h in i.path],
            )
            for i in proof.inclusions
        ],
        next_after=proof.next_after,
    )


class FindingOut(msgspec.Struct, rename="camel"):
    problem: str
    leaf_index: int | None
    event_id: int | None


class AuditVerification(msgspec.Struct, rename="camel"):
    valid: bool
    # the patient's sealed events checked
    checked: int
    tree_size: int
    findings: list[FindingOut]


@get(
    "/v1/audit/verify",
    operation_id="verifyAuditLog",
    summary="Check the patient's events against the signed log, and the log against "
    "the caller's previous checkpoint",
    tags=["audit"],
    raises=[NotAuthorizedException, ValidationException],
    security=[{"bearer": []}],
)
async def verify_audit(
    audit_trail: AuditTrailDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    checkpoint: Annotated[
        str | None,
        QueryParameter(
            description="the signed checkpoint note the app kept from an earlier visit",
            max_length=2000,
        ),
    ] = None,
) -> AuditVerification:
    result = await audit_trail.verify(PatientActor(patient.patient_id), checkpoint, context=context)
    return AuditVerification(
        valid=result.valid,
        checked=result.checked,
        tree_size=result.tree_size,
        findings=[FindingOut(f.problem, f.leaf_index, f.event_id) for f in result.findings],
    )
