"""Notifications, preferences and push registrations as facts, and the rules of
time that apply to them (quiet hours in the patient's zone, abnormal delays)."""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

NotificationKind = Literal[
    "new-results",
    "refill-due",
    "renewal-needed",
    "share-opened",
    "share-recipient",
    "new-sign-in",
]
KINDS: tuple[str, ...] = NotificationKind.__args__  # type: ignore[attr-defined]
PushKind = Literal["webpush", "apns", "fcm"]
Locale = Literal["en", "zh-Hans"]
DEFAULT_TIME_ZONE = "Asia/Shanghai"

HourMinute = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class QuietHours(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Local times (HH:MM); `start` after `end` spans midnight (22:00 to 07:00)."""

    start: HourMinute
    end: HourMinute


class Preferences(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    kinds: dict[NotificationKind, bool] = {}
    quiet_hours: QuietHours | None = None
    refill_lead_days: Annotated[int, msgspec.Meta(ge=0, le=30)] = 3
    abnormal_results: Literal["immediate", "delayed"] = "immediate"
    abnormal_delay_hours: Annotated[int, msgspec.Meta(ge=0, le=24 * 14)] = 72

    def enabled(self, kind: str) -> bool:
        return self.kinds.get(kind, True)  # type: ignore[call-overload]


class Recipient(msgspec.Struct, frozen=True):
    """What emitting a notification needs to know of its patient."""

    patient_id: UUID
    locale: str
    time_zone: str
    preferences: Preferences

    @property
    def zone(self) -> ZoneInfo:
        return zone_of(self.time_zone)


@functools.lru_cache(maxsize=512)
def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


class NewNotification(msgspec.Struct, frozen=True):
    """An occurrence to tell the patient about. `dedupe_key` names the occurrence:
    emitting the same key twice for a patient stores it once."""

    kind: NotificationKind
    dedupe_key: str
    params: dict[str, Any]
    # Results flagged abnormal: the patient may ask to hear about them later.
    abnormal: bool = False


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    kind: str
    params: dict[str, Any]
    created_at: datetime
    visible_at: datetime
    read_at: datetime | None


class InboxCursor(msgspec.Struct, frozen=True, array_like=True):
    visible_at: datetime
    id: UUID


class InboxQuery(msgspec.Struct, frozen=True):
    unread_only: bool = False
    after: InboxCursor | None = None
    limit: int = 20


# A sign-in's device: the patient's first ever, one seen before, or a new one.
SeenDevice = Literal["first", "known", "new"]


class Device(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    kind: PushKind
    address: str  # the Web Push endpoint, or the APNs / FCM token
    p256dh: str | None = None
    auth: str | None = None
    name: str | None = None
    created_at: datetime


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One push of one notification to one device, as the worker claimed it."""

    id: UUID
    notification_id: UUID
    patient_id: UUID
    kind: str
    attempts: int
    device: Device
    notification_kind: str
    locale: str


class Emission(msgspec.Struct, frozen=True):
    """A notification about to be stored: for whom, what, and when it shows."""

    recipient: Recipient
    item: NewNotification
    visible_at: datetime
    push_due_at: datetime


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: UUID
    notification_id: UUID
    patient_id: UUID
    kind: str
    attempts: int
    last_error: str | None
    finished_at: datetime | None


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


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around `now` end (in UTC terms), or None if `now`
    is not in them. Local wall-clock times: the end is 07:00 whatever DST did."""
    if quiet is None:
        return None
    start, end = _clock(quiet.start), _clock(quiet.end)
    if start == end:
        return None
    local = now.astimezone(zone)
    at = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= at < end
        end_day = local.date()
    else:
        inside = at >= start or at < end
        end_day = local.date() + timedelta(days=1) if at >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone)


def visible_at(now: datetime, item: NewNotification, preferences: Preferences) -> datetime:
    if item.abnormal and preferences.abnormal_results == "delayed":
        return now + timedelta(hours=preferences.abnormal_delay_hours)
    return now


def push_due_at(visible: datetime, recipient: Recipient) -> datetime:
    """Push waits for quiet hours to end; the inbox does not."""
    quiet = recipient.preferences.quiet_hours
    if quiet is None:
        return visible
    return quiet_until(visible, quiet, recipient.zone) or visible
