"""DELETE /v1/me: the patient erases their account."""

from __future__ import annotations

from litestar import delete
from litestar.exceptions import NotAuthorizedException

from api.current_patient import CurrentPatient
from api.deps import AccountErasureDep, RequestContextDep
from domain.access import PatientActor


@delete(
    "/v1/me",
    operation_id="eraseAccount",
    summary="Erase the account: records, files, shares and links; the audit trail stays, pseudonymised",
    tags=["account"],
    raises=[NotAuthorizedException],
    security=[{"bearer": []}],
    status_code=204,
)
async def erase_account(
    account_erasure: AccountErasureDep, patient: CurrentPatient, context: RequestContextDep
) -> None:
    await account_erasure.erase(PatientActor(patient.patient_id), context=context)
