"""What notifications need from the outside: the stores (PostgreSQL in infra) and
one `PushSender` per push service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

import msgspec

from domain.notifications.model import (
    Delivery,
    Device,
    InboxCursor,
    NewNotification,
    Notification,
    Preferences,
    Recipient,
)


class Emission(msgspec.Struct, frozen=True):
    recipient: Recipient
    item: NewNotification
    visible_at: datetime
    push_due_at: datetime


class NotificationStore(Protocol):
    async def recipients(self, patient_ids: list[UUID]) -> list[Recipient]: ...

    async def add(self, emissions: list[Emission], now: datetime) -> list[UUID]:
        """Stores each notification unless its (patient, dedupe key) is already
        there, with one pending delivery per registered device; in the caller's
        transaction. Returns the ids actually added."""
        ...

    async def inbox(
        self,
        patient_id: UUID,
        *,
        unread_only: bool,
        after: InboxCursor | None,
        limit: int,
        now: datetime,
    ) -> list[Notification]: ...

    async def mark_read(self, patient_id: UUID, notification_id: UUID, now: datetime) -> bool: ...

    async def mark_all_read(self, patient_id: UUID, now: datetime) -> int: ...

    async def unread_count(self, patient_id: UUID, now: datetime) -> int: ...

    async def preferences(self, patient_id: UUID) -> Preferences: ...

    async def save_preferences(
        self, patient_id: UUID, preferences: Preferences, now: datetime
    ) -> None: ...

    async def remember_sign_in_device(
        self, patient_id: UUID, fingerprint: bytes, now: datetime
    ) -> Literal["first", "known", "new"]:
        """ "first": the patient's first device ever; "new": another one."""
        ...


class DeviceStore(Protocol):
    async def add(self, device: Device) -> Device:
        """The registration, or the one already there for the same address."""
        ...

    async def list(self, patient_id: UUID) -> list[Device]: ...

    async def remove(self, patient_id: UUID, device_id: UUID) -> bool: ...


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: UUID
    notification_id: UUID
    patient_id: UUID
    kind: str
    attempts: int
    last_error: str | None
    finished_at: datetime | None


class OutboxStore(Protocol):
    async def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[Delivery]:
        """Due pending deliveries (and ones whose lease lapsed), leased to this
        worker; each claim counts as an attempt."""
        ...

    async def delivered(self, delivery_id: UUID, now: datetime) -> None: ...

    async def retry(self, delivery_id: UUID, due_at: datetime, error: str) -> None: ...

    async def dead(self, delivery_id: UUID, now: datetime, error: str) -> None: ...

    async def gone(self, delivery: Delivery, now: datetime, error: str) -> None:
        """The push service says the registration no longer exists: remove it."""
        ...

    async def dead_letters(self, limit: int) -> list[DeadLetter]: ...


class PushMessage(msgspec.Struct, frozen=True, kw_only=True):
    """All a push carries: a generic title, and what the app needs to fetch the rest."""

    notification_id: UUID
    kind: str
    title: str
    # The receiver's deduplication key (Topic, apns-collapse-id, collapse_key).
    collapse_key: str


PushOutcome = Literal["delivered", "retry", "gone", "rejected"]


class PushResult(msgspec.Struct, frozen=True):
    outcome: PushOutcome
    detail: str = ""
    retry_after_seconds: float | None = None


class PushSender(Protocol):
    async def send(self, device: Device, message: PushMessage) -> PushResult: ...


class HospitalNames(Protocol):
    async def name(self, hospital_id: UUID) -> str | None: ...
