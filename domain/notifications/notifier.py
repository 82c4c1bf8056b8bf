"""Emitting notifications: the one way any feature tells a patient something.

Runs in the caller's transaction (the push ingest, the refill scan, a share's
access), so the notification and its outbox rows commit with the fact that
caused them, or not at all. Preferences decide whether a kind is told, when
it shows in the inbox and when push may ring."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.notifications import rules
from domain.notifications.model import NewNotification, push_due_at, visible_at
from domain.notifications.ports import Emission, NotificationStore
from domain.ports import Clock


class Notifier:
    def __init__(self, store: NotificationStore, clock: Clock):
        self._store = store
        self._clock = clock

    async def emit(
        self, items: Iterable[tuple[UUID, NewNotification]], *, now: datetime | None = None
    ) -> list[UUID]:
        """Stores what the patients' preferences let through; returns the ids of
        the notifications added (an occurrence already told is not added again)."""
        items = list(items)
        if not items:
            return []
        now = now or self._clock.now()
        recipients = {
            r.patient_id: r for r in await self._store.recipients(list({p for p, _ in items}))
        }
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
        patient_id: UUID,
        hospital_id: UUID,
        hospital_name: str,
        delivery_key: str,
        resources: Iterable[dict[str, Any]],
    ) -> list[UUID]:
        item = rules.new_results(hospital_id, hospital_name, delivery_key, resources)
        return await self.emit([(patient_id, item)]) if item else []

    async def share_accessed(
        self, patient_id: UUID, share_id: UUID, label: str | None, recipient: str
    ) -> list[UUID]:
        """For the share feature: call on every access of a share, in the access's
        transaction. The first opening and each new recipient notify once."""
        return await self.emit(
            (patient_id, item) for item in rules.share_accessed(share_id, label, recipient)
        )

    async def signed_in(self, patient_id: UUID, user_agent: str | None) -> list[UUID]:
        """After a successful sign-in: tells the patient when it came from a device
        not seen before (not on the very first one)."""
        fingerprint = rules.device_fingerprint(user_agent)
        seen = await self._store.remember_sign_in_device(patient_id, fingerprint, self._clock.now())
        if seen != "new":
            return []
        return await self.emit([(patient_id, rules.new_sign_in(fingerprint, user_agent))])
