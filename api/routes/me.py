"""The signed-in patient's own profile."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.exceptions import NotAuthorizedException

from api.current_patient import CurrentPatient
from api.deps import ServicesDep
from api.routes.accounts import Profile


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
async def get_me(patient: CurrentPatient, services: ServicesDep) -> MeOut:
    profile = Profile.of(await services.auth.profile(patient.patient_id))
    unread = await services.inbox.unread_count(patient.patient_id)
    return MeOut(**msgspec.structs.asdict(profile), unread_notifications=unread)
