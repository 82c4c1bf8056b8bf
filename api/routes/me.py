"""The signed-in patient's own profile."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException

from api.current_patient import CurrentPatient
from api.deps import AuthenticationDep, InboxDep
from api.routes.accounts import Profile
from domain.access import PatientActor


class MeOut(Profile, kw_only=True):
    """The profile, and how many notifications are unread."""

    unread_notifications: int


@get(
    "/v1/me",
    operation_id="getMe",
    summary="The signed-in patient's profile",
    tags=["account"],
    security=[{"bearer": []}],
    raises=[NotAuthorizedException],
)
async def get_me(
    patient: CurrentPatient, authentication: AuthenticationDep, inbox: InboxDep
) -> MeOut:
    profile = Profile.of(await authentication.profile(patient.patient_id))
    unread = await inbox.unread_count(PatientActor(patient.patient_id), patient.patient_id)
    return MeOut(**msgspec.structs.asdict(profile), unread_notifications=unread)
