"""Ending sessions from the session list: one, or all but the one asking."""

from __future__ import annotations

from uuid import UUID

from domain.accounts.sessions import Session, SessionNotFound
from domain.audit.events import AuditEvent, RequestContext
from domain.ports import AuditLog, Clock, RefreshTokenStore, UnitOfWorkFactory


class Sessions:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        sessions: RefreshTokenStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._sessions = sessions
        self._audit = audit
        self._clock = clock

    async def list(self, patient_id: UUID) -> list[Session]:
        return await self._sessions.sessions(patient_id, self._clock.now())

    async def end(self, patient_id: UUID, session_id: UUID, *, context: RequestContext) -> None:
        event = _event("session.ended", patient_id, context).with_resources(
            "Session", str(session_id)
        )
        async with self._unit_of_work() as uow:
            ended = await self._sessions.revoke_session(
                patient_id, session_id, self._clock.now(), "ended-by-patient"
            )
            if not ended:
                # Another patient's session, or one already over: the same answer.
                await self._audit.append(event.refused("not-found"))
                await uow.commit()
                raise SessionNotFound("No such session.")
            await self._audit.append(event)
            await uow.commit()

    async def end_others(
        self, patient_id: UUID, current: UUID | None, *, context: RequestContext
    ) -> int:
        async with self._unit_of_work() as uow:
            ended = await self._sessions.revoke_all(
                patient_id, self._clock.now(), "ended-by-patient", keep=current
            )
            for session_id in ended:
                await self._audit.append(
                    _event("session.ended", patient_id, context).with_resources(
                        "Session", str(session_id)
                    )
                )
            await uow.commit()
        return len(ended)


def _event(action: str, patient_id: UUID, context: RequestContext) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="success",
        actor_type="patient",
        actor_id=str(patient_id),
        patient_id=patient_id,
        context=context,
    )
