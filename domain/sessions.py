"""Signed-in devices. A session is a refresh-token family: it starts at sign-in,
moves on with every refresh, and ends on sign-out, on reuse of a spent token, when
the patient ends it from another device, or when the password changes. Access
tokens name their session (`sid`), and the token check refuses those of an ended
session at once."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from domain.audit import AuditEvent, AuditLog, RequestContext
from domain.clock import Clock
from domain.errors import NotFound
from domain.ports import UnitOfWork

MAX_DEVICE_NAME_LENGTH = 200


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    device_name: str | None
    client_address: str | None
    created_at: datetime
    last_used_at: datetime


class SessionNotFound(NotFound):
    kind = "session-not-found"
    title = "No such session"


class SessionStore(Protocol):
    async def sessions(self, patient_id: UUID, now: datetime) -> list[Session]: ...

    async def revoke_session(
        self, patient_id: UUID, family_id: UUID, at: datetime, reason: str
    ) -> bool: ...

    async def revoke_all(
        self, patient_id: UUID, at: datetime, reason: str, *, keep: UUID | None = None
    ) -> list[UUID]: ...

    async def session_active(self, patient_id: UUID, family_id: UUID) -> bool: ...


# Most specific first: an iPad's agent also says "Mac OS X", Android's says "Linux".
_PLATFORMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("Macintosh", "Mac"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_APP = re.compile(r"^([A-Za-z][\w.\- ]{0,40})/[\w.]+")


def device_name_from(user_agent: str | None) -> str | None:
    """A name a person recognises ("Firefox on Linux", "phr on iPhone"), or None."""
    if not user_agent:
        return None
    platform = next((name for token, name in _PLATFORMS if token in user_agent), None)
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    if browser is None and not user_agent.startswith("Mozilla/"):
        match = _APP.match(user_agent)
        browser = match.group(1) if match else None
    if browser and platform:
        return f"{browser} on {platform}"
    return browser or platform


def validated_device_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", raw.strip())
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    return name[:MAX_DEVICE_NAME_LENGTH] or None


class Sessions:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        sessions: SessionStore,
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
