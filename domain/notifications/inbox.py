"""The patient's inbox and notification preferences, through the access policy:
every look is decided and audited like any other read of the patient's account."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from uuid import UUID

from domain.access import Action, Actor, Permit, authorize
from domain.audit.events import NO_REQUEST, RequestContext
from domain.audited_access import authorize_audited
from domain.errors import NotFound
from domain.notifications.model import InboxCursor, InboxQuery, Notification, Preferences
from domain.ports import AuditLog, Clock, NotificationStore, UnitOfWork


class NotificationNotFound(NotFound):
    pass


@asynccontextmanager
async def permitted(
    unit_of_work: Callable[[], UnitOfWork],
    audit: AuditLog,
    clock: Clock,
    actor: Actor,
    action: Action,
    patient_id: UUID,
    context: RequestContext,
) -> AsyncIterator[tuple[UnitOfWork, Permit]]:
    """Opens the unit of work and asks the policy (a refusal is audited and
    committed before it is raised)."""
    async with unit_of_work() as uow:
        permit = await authorize_audited(
            uow, audit, actor, action, patient_id, now=clock.now(), context=context
        )
        yield uow, permit


class Inbox:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        store: NotificationStore,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._store = store
        self._audit = audit
        self._clock = clock

    def _permitted(self, actor: Actor, action: Action, patient_id: UUID, context: RequestContext):
        return permitted(
            self._unit_of_work, self._audit, self._clock, actor, action, patient_id, context
        )

    async def list(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        unread_only: bool,
        after: InboxCursor | None,
        limit: int,
        context: RequestContext,
    ) -> tuple[list[Notification], str]:
        """A page of notifications, newest first, and the patient's locale."""
        async with self._permitted(actor, "notification.list", patient_id, context) as (
            uow,
            permit,
        ):
            items = await self._store.inbox(
                permit, InboxQuery(unread_only, after, limit), self._clock.now()
            )
            (recipient,) = await self._store.recipients([permit])
            await self._audit.append(permit.event("Notification", *(str(n.id) for n in items)))
            await uow.commit()
            return items, recipient.locale

    async def mark_read(
        self, actor: Actor, patient_id: UUID, notification_id: UUID, *, context: RequestContext
    ) -> None:
        async with self._permitted(actor, "notification.read", patient_id, context) as (
            uow,
            permit,
        ):
            if not await self._store.mark_read(permit, notification_id, self._clock.now()):
                await self._audit.append(
                    permit.refusal("not-found", "Notification", str(notification_id))
                )
                await uow.commit()
                raise NotificationNotFound("No notification with this id.")
            await self._audit.append(permit.event("Notification", str(notification_id)))
            await uow.commit()

    async def mark_all_read(
        self, actor: Actor, patient_id: UUID, *, context: RequestContext
    ) -> int:
        async with self._permitted(actor, "notification.read", patient_id, context) as (
            uow,
            permit,
        ):
            count = await self._store.mark_all_read(permit, self._clock.now())
            await self._audit.append(permit.event("Notification"))
            await uow.commit()
            return count

    async def unread_count(self, actor: Actor, patient_id: UUID) -> int:
        """For the patient's own profile. A count says nothing about anyone's
        health, so the decision is not written to the audit log (GET /v1/me
        would otherwise add a row per call)."""
        now = self._clock.now()
        permit = authorize(actor, "notification.list", patient_id, now=now, context=NO_REQUEST)
        async with self._unit_of_work():
            return await self._store.unread_count(permit, now)

    async def preferences(
        self, actor: Actor, patient_id: UUID, *, context: RequestContext
    ) -> Preferences:
        async with self._permitted(actor, "notification.preferences", patient_id, context) as (
            uow,
            permit,
        ):
            preferences = await self._store.preferences(permit)
            await uow.commit()
            return preferences

    async def save_preferences(
        self, actor: Actor, patient_id: UUID, preferences: Preferences, *, context: RequestContext
    ) -> Preferences:
        async with self._permitted(actor, "notification.preferences", patient_id, context) as (
            uow,
            permit,
        ):
            await self._store.save_preferences(permit, preferences, self._clock.now())
            await self._audit.append(permit.event("NotificationPreferences"))
            await uow.commit()
            return preferences
