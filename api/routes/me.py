"""The signed-in patient's own profile."""

from __future__ import annotations

from litestar import get
from litestar.exceptions import NotAuthorizedException

from api.current_patient import CurrentPatient
from api.deps import AuthenticationDep
from api.routes.accounts import Profile


@get(
    "/v1/me",
    operation_id="getMe",
    summary="The signed-in patient's profile",
    tags=["account"],
    security=[{"bearer": []}],
    raises=[NotAuthorizedException],
)
async def get_me(patient: CurrentPatient, authentication: AuthenticationDep) -> Profile:
    return Profile.of(await authentication.profile(patient.patient_id))
