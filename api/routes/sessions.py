"""The patient's signed-in devices: list, end one, end all but this one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import delete, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import Parameter

from api.current_patient import CurrentPatient
from api.deps import RequestContextDep, SessionsDep


class SessionOut(msgspec.Struct, rename="camel"):
    id: UUID
    device_name: str | None
    client_address: str | None
    created_at: datetime
    last_used_at: datetime
    current: bool


class SessionList(msgspec.Struct, rename="camel"):
    items: list[SessionOut]


class SessionsEnded(msgspec.Struct, rename="camel"):
    ended: int


@get(
    "/v1/me/sessions",
    operation_id="listSessions",
    summary="Signed-in devices; the one asking is marked current",
    tags=["account"],
    security=[{"bearer": []}],
    raises=[NotAuthorizedException],
)
async def list_sessions(sessions: SessionsDep, patient: CurrentPatient) -> SessionList:
    """`lastUsedAt` moves when the device signs in or refreshes its tokens."""
    sessions = await sessions.list(patient.patient_id)
    return SessionList(
        items=[
            SessionOut(
                id=s.id,
                device_name=s.device_name,
                client_address=s.client_address,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                current=s.id == patient.session_id,
            )
            for s in sessions
        ]
    )


@delete(
    "/v1/me/sessions/{session_id:uuid}",
    operation_id="endSession",
    summary="End one session: its refresh token and access tokens stop working at once",
    tags=["account"],
    security=[{"bearer": []}],
    raises=[NotAuthorizedException, NotFoundException],
    status_code=204,
)
async def end_session(
    sessions: SessionsDep,
    patient: CurrentPatient,
    context: RequestContextDep,
    session_id: Annotated[UUID, Parameter(description="the session's id")],
) -> None:
    await sessions.end(patient.patient_id, session_id, context=context)


@delete(
    "/v1/me/sessions",
    operation_id="endOtherSessions",
    summary="End every session but the one asking",
    tags=["account"],
    security=[{"bearer": []}],
    raises=[NotAuthorizedException],
    status_code=200,
)
async def end_other_sessions(
    sessions: SessionsDep, patient: CurrentPatient, context: RequestContextDep
) -> SessionsEnded:
    ended = await sessions.end_others(patient.patient_id, patient.session_id, context=context)
    return SessionsEnded(ended=ended)
