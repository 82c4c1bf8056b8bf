"""The patient's consents: who may send records, who may read which."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import delete, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import PathParameter

from api.current_patient import CurrentPatient
from api.deps import ClockDep, PatientConsentsDep, RequestContextDep
from domain.access import PatientActor
from domain.consents.consent import Consent


class ConsentScopeOut(msgspec.Struct, rename="camel"):
    resource_types: list[str]


class ConsentOut(msgspec.Struct, rename="camel"):
    id: UUID
    kind: str
    grantee_type: str
    grantee_id: str
    scope: ConsentScopeOut
    period_start: datetime
    period_end: datetime | None
    status: str
    revoked_at: datetime | None
    created_at: datetime


def consent_out(consent: Consent, now: datetime) -> ConsentOut:
    return ConsentOut(
        id=consent.id,
        kind=consent.kind,
        grantee_type=consent.grantee_type,
        grantee_id=consent.grantee_id,
        scope=ConsentScopeOut(resource_types=list(consent.scope.resource_types)),
        period_start=consent.period_start,
        period_end=consent.period_end,
        status=consent.status_at(now),
        revoked_at=consent.revoked_at,
        created_at=consent.created_at,
    )


@get(
    "/v1/consents",
    operation_id="listConsents",
    summary="The patient's consents, current and archived",
    tags=["consents"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
)
async def list_consents(
    clock: ClockDep,
    patient_consents: PatientConsentsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> list[ConsentOut]:
    consents = await patient_consents.list(PatientActor(patient.patient_id), context=context)
    now = clock.now()
    return [consent_out(c, now) for c in consents]


@delete(
    "/v1/consents/{consent_id:uuid}",
    operation_id="revokeConsent",
    summary="Revoke a consent; what depends on it stops at once",
    tags=["consents"],
    raises=[NotAuthorizedException, NotFoundException],
    security=[{"bearer": []}],
    status_code=204,
)
async def revoke_consent(
    patient_consents: PatientConsentsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    consent_id: Annotated[UUID, PathParameter(description="the consent's id")],
) -> None:
    await patient_consents.revoke(PatientActor(patient.patient_id), consent_id, context=context)
