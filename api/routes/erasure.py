"""DELETE /v1/me: the patient erases their account."""

from __future__ import annotations

import msgspec
from litestar import delete
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import JSONBody

from api.current_patient import CurrentPatient
from api.deps import ProfileChangesDep, RequestContextDep
from api.routes.accounts import Password


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    password: Password


@delete(
    "/v1/me",
    operation_id="eraseAccount",
    summary="Erase the account: records, files, shares and links; the audit trail stays, pseudonymised",
    description="Requires the current password in the body; 403 `wrong-password` otherwise "
    "(nothing is deleted).",
    tags=["account"],
    raises=[
        NotAuthorizedException,
        PermissionDeniedException,
        ValidationException,
        TooManyRequestsException,
    ],
    security=[{"bearer": []}],
    status_code=204,
)
async def erase_account(
    data: JSONBody[ErasureRequest],
    profile_changes: ProfileChangesDep,
    patient: CurrentPatient,
    context: RequestContextDep,
) -> None:
    await profile_changes.erase(patient.patient_id, password=data.password, context=context)
