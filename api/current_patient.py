"""Who is calling: the patient behind a bearer access token.

Handlers declare `patient: CurrentPatient`; the dependency verifies the token
(signature with a pinned algorithm, kid, iss, aud, exp, nbf, typ) and refuses
anything else with 401 problem+json."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request
from litestar.di import NamedDependency

from api.deps import AuthenticationDep
from domain.errors import AuthenticationFailed


class AuthenticatedPatient(msgspec.Struct, frozen=True):
    patient_id: UUID
    token_id: str


async def provide_current_patient(
    request: Request[Any, Any, Any], authentication: AuthenticationDep
) -> AuthenticatedPatient:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("A bearer access token is required.")
    claims = await authentication.authenticate(token.strip())
    return AuthenticatedPatient(patient_id=claims.patient_id, token_id=claims.token_id)


CurrentPatient = NamedDependency[AuthenticatedPatient]
