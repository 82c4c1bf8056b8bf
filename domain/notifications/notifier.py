"""Emitting notifications: the one way any feature tells a patient something.

Runs in the caller's transaction (the push ingest, the refill scan, a share's
access), so the notification and its outbox rows commit with the fact that
caused them, or not at all. Preferences decide whether a kind is told, when
it shows in the inbox and when push may ring. The stores are reached through
permits the policy mints for the notifier (a system actor); the causing use
case has audited the access that caused the notification."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.access import Permit, SystemActor, authorize, authorize_each
from domain.audit.events import NO_REQUEST
from domain.notifications import rules
from domain.notifications.model import Emission, NewNotification, push_due_at, visible_at
from domain.ports import Clock, NotificationStore

NOTIFIER = SystemActor("notifier")


class Notifier:
    def __init__(self, store: NotificationStore, clock: Clock):
        self._store = store
        self._clock = clock

    def _permit(self, patient_id: UUID, now: datetime) -> Permit:
        return authorize(NOTIFIER, "notification.created", patient_id, now=now, context=NO_REQUEST)

    async def emit(
        self, items: Iterable[tuple[UUID, NewNotification]], *, now: datetime | None = None
    ) -> list[UUID]:
        """Stores what the patients' preferences let through; returns the ids of
        the notifications added (an occurrence already told is not added again)."""
        items = list(items)
        if not items:
            return []
        now = now or self._clock.now()
        permits = authorize_each(
            NOTIFIER,
            "notification.created",
            list(dict.fromkeys(p for p, _ in items)),
            now=now,
            context=NO_REQUEST,
        )
        recipients = {r.patient_id: r for r in await self._store.recipients(permits)}
        emissions = []
        for patient_id, item in items:
            recipient = recipients.get(patient_id)
            if recipient is None or not recipient.preferences.enabled(item.kind):
                continue
            visible = visible_at(now, item, recipient.preferences)
            emissions.append(Emission(recipient, item, visible, push_due_at(visible, recipient)))
        return await self._store.add(emissions, now) if emissions else []

    async def results_delivered(
        self,
        ingest: Permit,
        hospital_id: UUID,
        hospital_name: str,
        record_ids: list[UUID],
        resources: dict[tuple[str, str], dict[str, Any]],
        delivery_key: str,
    ) -> list[UUID]:
        """A hospital's delivery stored `record_ids` under the `ingest` permit;
        `resources` are its entries by (type, source id). One notification for
        the new final results among them."""
        keys = await self._store.stored_keys(ingest, record_ids)
        stored = [resource for key, resource in resources.items() if key in keys]
        item = rules.new_results(hospital_id, hospital_name, delivery_key, stored)
        return await self.emit([(ingest.patient_id, item)]) if item else []

    async def share_accessed(
        self, patient_id: UUID, share_id: UUID, label: str | None, recipient: str
    ) -> list[UUID]:
        """For the share feature: call on every access of a share, in the access's
        transaction. The first opening and each new recipient notify once."""
        return await self.emit(
            (patient_id, item) for item in rules.share_accessed(share_id, label, recipient)
        )

    async def signed_in(self, patient_id: UUID, user_agent: str | None) -> list[UUID]:
        """Inside a successful sign-in's transaction (Authentication's
        on_signed_in): tells the patient when it came from a device not seen
        before (not on the very first one)."""
        now = self._clock.now()
        fingerprint = rules.device_fingerprint(user_agent)
        seen = await self._store.seen_device(self._permit(patient_id, now), fingerprint, now)
        if seen != "new":
            return []
        return await self.emit([(patient_id, rules.new_sign_in(fingerprint, user_agent))], now=now)
