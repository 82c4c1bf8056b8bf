"""Notifications in PostgreSQL: the inbox, preferences, push registrations and
the delivery outbox. Writes join the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from domain.access import Permit
from domain.fhir import json_codec as fhir_json
from domain.notifications.model import (
    DEFAULT_TIME_ZONE,
    DeadLetter,
    Delivery,
    Device,
    Emission,
    InboxQuery,
    NewNotification,
    Notification,
    Preferences,
    Recipient,
    SeenDevice,
)
from infra.pg.database import Database
from infra.pg.jobs import JOB_CHANNEL

# The NOTIFY payload that wakes the workers' push delivery (infra/background_jobs.py).
DELIVERY_WAKE = "notifications.deliver"


# Most patients never change their preferences: one shared (frozen) default
# instead of one per patient of a fan-out.
_DEFAULT_PREFERENCES = Preferences()


def _preferences(value: object) -> Preferences:
    if not isinstance(value, dict):
        return _DEFAULT_PREFERENCES
    try:
        return msgspec.convert(value, Preferences)
    except msgspec.ValidationError:
        return Preferences()


def _notification(row: asyncpg.Record) -> Notification:
    return Notification(
        id=row["id"],
        patient_id=row["patient_id"],
        kind=row["kind"],
        params=row["params"],
        created_at=row["created_at"],
        visible_at=row["visible_at"],
        read_at=row["read_at"],
    )


def _device(row: asyncpg.Record) -> Device:
    return Device(
        id=row["id"],
        patient_id=row["patient_id"],
        kind=row["kind"],
        address=row["address"],
        p256dh=row["p256dh"],
        auth=row["auth"],
        name=row["name"],
        created_at=row["created_at"],
    )


class PgNotificationStore:
    def __init__(self, database: Database):
        self._database = database

    _RECIPIENTS = """
        SELECT p.id, p.locale, p.time_zone, np.preferences
        FROM patient p LEFT JOIN notification_preference np ON np.patient_id = p.id
        WHERE p.id = ANY($1::uuid[])
    """

    async def recipients(self, permits: list[Permit]) -> list[Recipient]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._RECIPIENTS, [p.patient_id for p in permits])
        return [
            Recipient(
                patient_id=row["id"],
                locale=row["locale"] or "en",
                time_zone=row["time_zone"] or DEFAULT_TIME_ZONE,
                preferences=_preferences(row["preferences"]),
            )
            for row in rows
        ]

    # A fan-out is one statement, however many patients: the notifications, then
    # a pending delivery for each device of each patient whose notification was
    # new (an occurrence already told inserts nothing and queues nothing), and a
    # NOTIFY that wakes the workers when the transaction commits. The distinct
    # items travel once; each emission names its item by position, and its times
    # only when they are not `now` (most are: timestamps are the dearest values
    # to encode, ~30 ms for a fan-out's 20,000).
    _ADD = """
        WITH emission AS MATERIALIZED (
            SELECT gen_random_uuid() AS id, e.patient_id,
                   coalesce(e.visible_at, $8) AS visible_at, coalesce(e.due_at, $8) AS due_at,
                   i.kind, i.dedupe_key, i.params::jsonb AS params
            FROM unnest($4::uuid[], $5::bigint[], $6::timestamptz[], $7::timestamptz[])
                 AS e (patient_id, item, visible_at, due_at)
            JOIN unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
                 AS i (kind, dedupe_key, params, item) USING (item)
        ), added AS (
            INSERT INTO notification
                (id, patient_id, kind, dedupe_key, params, created_at, visible_at)
            SELECT id, patient_id, kind, dedupe_key, params, $8, visible_at FROM emission
            ON CONFLICT (patient_id, dedupe_key) DO NOTHING
            RETURNING id
        ), queued AS (
            INSERT INTO notification_delivery
                (id, notification_id, patient_id, device_id, kind, due_at, created_at)
            SELECT gen_random_uuid(), e.id, d.patient_id, d.id, d.kind, e.due_at, $8
            FROM added a
            JOIN emission e ON e.id = a.id
            JOIN push_device d ON d.patient_id = e.patient_id
            RETURNING 1
        ), woken AS (
            SELECT pg_notify($9, $10) FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued
        )
        SELECT coalesce(array_agg(id), '{}') AS ids, (SELECT count(*) FROM woken) AS woken
        FROM added
    """

    async def add(self, emissions: list[Emission], now: datetime) -> list[UUID]:
        """Stores each emission not stored yet (by patient and dedupe key), with a
        pending delivery per device, in the caller's transaction; returns the
        ids it added. Workers are woken when the transaction commits."""
        positions: dict[int, int] = {}
        items: list[NewNotification] = []
        patients, chosen, visible, due = [], [], [], []
        for e in emissions:
            position = positions.get(id(e.item))
            if position is None:
                items.append(e.item)
                position = positions[id(e.item)] = len(items)
            patients.append(e.recipient.patient_id)
            chosen.append(position)
            visible.append(None if e.visible_at == now else e.visible_at)
            due.append(None if e.push_due_at == now else e.push_due_at)
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._ADD,
                [item.kind for item in items],
                [item.dedupe_key for item in items],
                [fhir_json.encode(item.params).decode() for item in items],
                patients,
                chosen,
                visible,
                due,
                now,
                JOB_CHANNEL,
                DELIVERY_WAKE,
            )
        return list(row["ids"])

    _INBOX = """
        SELECT id, patient_id, kind, params, created_at, visible_at, read_at
        FROM notification
        WHERE patient_id = $1 AND visible_at <= $2
          AND (NOT $3 OR read_at IS NULL)
          AND ($4::timestamptz IS NULL OR (visible_at, id) < ($4, $5))
        ORDER BY visible_at DESC, id DESC
        LIMIT $6
    """

    async def inbox(self, permit: Permit, q: InboxQuery, now: datetime) -> list[Notification]:
        after = q.after
        async with self._database.transaction() as conn:
            rows = await conn.fetch(
                self._INBOX,
                permit.patient_id,
                now,
                q.unread_only,
                after.visible_at if after else None,
                after.id if after else None,
                q.limit,
            )
        return [_notification(row) for row in rows]

    _READ = """
        UPDATE notification SET read_at = coalesce(read_at, $3)
        WHERE patient_id = $1 AND id = $2 AND visible_at <= $3
    """

    async def mark_read(self, permit: Permit, notification_id: UUID, now: datetime) -> bool:
        async with self._database.transaction() as conn:
            status = await conn.execute(self._READ, permit.patient_id, notification_id, now)
        return status == "UPDATE 1"

    _READ_ALL = """
        UPDATE notification SET read_at = $2
        WHERE patient_id = $1 AND read_at IS NULL AND visible_at <= $2
    """

    async def mark_all_read(self, permit: Permit, now: datetime) -> int:
        async with self._database.transaction() as conn:
            status = await conn.execute(self._READ_ALL, permit.patient_id, now)
        return int(status.split()[-1])

    _UNREAD = """
        SELECT count(*) FROM notification
        WHERE patient_id = $1 AND read_at IS NULL AND visible_at <= $2
    """

    async def unread_count(self, permit: Permit, now: datetime) -> int:
        async with self._database.transaction() as conn:
            return await conn.fetchval(self._UNREAD, permit.patient_id, now)

    _PREFERENCES = "SELECT preferences FROM notification_preference WHERE patient_id = $1"

    async def preferences(self, permit: Permit) -> Preferences:
        async with self._database.transaction() as conn:
            return _preferences(await conn.fetchval(self._PREFERENCES, permit.patient_id))

    _SAVE_PREFERENCES = """
        INSERT INTO notification_preference (patient_id, preferences, updated_at)
        VALUES ($1, $2, $3)
        ON CONFLICT (patient_id) DO UPDATE
            SET preferences = EXCLUDED.preferences, updated_at = EXCLUDED.updated_at
    """

    async def save_preferences(self, permit: Permit, value: Preferences, now: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._SAVE_PREFERENCES, permit.patient_id, msgspec.to_builtins(value), now
            )

    # The count is of the rows before this insert (a CTE sees the snapshot).
    _SIGN_IN = """
        WITH added AS (
            INSERT INTO sign_in_device (patient_id, fingerprint, first_seen_at)
            VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1
        )
        SELECT (SELECT count(*) FROM added) AS added,
               (SELECT count(*) FROM sign_in_device WHERE patient_id = $1) AS known
    """

    async def seen_device(self, permit: Permit, device: bytes, now: datetime) -> SeenDevice:
        """`device` is the fingerprint of what signed in."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._SIGN_IN, permit.patient_id, device, now)
        if not row["added"]:
            return "known"
        return "new" if row["known"] else "first"

    _TOUCHED = """
        SELECT resource_type, source_resource_id FROM record
        WHERE patient_id = $1 AND id = ANY($2::uuid[])
    """

    async def stored_keys(self, permit: Permit, ids: list[UUID]) -> set[tuple[str, str]]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._TOUCHED, permit.patient_id, ids)
        return {(row["resource_type"], row["source_resource_id"]) for row in rows}

    _PRESCRIBED = """
        SELECT DISTINCT patient_id FROM record
        WHERE resource_type = 'MedicationRequest' AND status = 'active'
          AND ($1::uuid IS NULL OR patient_id > $1)
        ORDER BY patient_id
        LIMIT $2
    """

    async def with_active_orders(self, after: UUID | None, limit: int) -> list[UUID]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._PRESCRIBED, after, limit)
        return [row["patient_id"] for row in rows]


class PgDeviceStore:
    def __init__(self, database: Database):
        self._database = database

    _COLUMNS = "id, patient_id, kind, address, p256dh, auth, name, created_at"
    _ADD = f"""
        INSERT INTO push_device ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (patient_id, kind, address) DO UPDATE
            SET p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
                name = coalesce(EXCLUDED.name, push_device.name)
        RETURNING {_COLUMNS}
    """

    async def add(self, permit: Permit, device: Device) -> Device:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._ADD,
                device.id,
                permit.patient_id,
                device.kind,
                device.address,
                device.p256dh,
                device.auth,
                device.name,
                device.created_at,
            )
        return _device(row)

    _LIST = f"SELECT {_COLUMNS} FROM push_device WHERE patient_id = $1 ORDER BY created_at, id"

    async def list(self, permit: Permit) -> list[Device]:
        async with self._database.transaction() as conn:
            return [_device(row) for row in await conn.fetch(self._LIST, permit.patient_id)]

    _REMOVE = "DELETE FROM push_device WHERE patient_id = $1 AND id = $2"

    async def remove(self, permit: Permit, device_id: UUID) -> bool:
        async with self._database.transaction() as conn:
            return await conn.execute(self._REMOVE, permit.patient_id, device_id) == "DELETE 1"


class PgOutboxStore:
    def __init__(self, database: Database):
        self._database = database

    # A claim is a lease: `claimed_until` keeps other workers off while this one
    # sends; if it dies, the lease lapses and the row is claimed again.
    _CLAIM = """
        WITH due AS (
            SELECT id FROM notification_delivery
            WHERE status = 'pending' AND due_at <= $1
              AND (claimed_until IS NULL OR claimed_until <= $1)
            ORDER BY due_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        UPDATE notification_delivery d
        SET claimed_until = $2, attempts = d.attempts + 1
        FROM due WHERE d.id = due.id
        RETURNING d.id
    """
    _CLAIMED = """
        SELECT d.id, d.notification_id, d.patient_id, d.kind, d.attempts,
               n.kind AS notification_kind, p.locale,
               v.id AS device_id, v.kind AS device_kind, v.address, v.p256dh, v.auth,
               v.name, v.created_at
        FROM notification_delivery d
        JOIN notification n ON n.id = d.notification_id
        JOIN patient p ON p.id = d.patient_id
        LEFT JOIN push_device v ON v.id = d.device_id
        WHERE d.id = ANY($1::uuid[])
        ORDER BY d.due_at
    """
    _ORPHANED = """
        UPDATE notification_delivery SET status = 'gone', finished_at = $2,
            last_error = 'registration removed'
        WHERE id = ANY($1::uuid[])
    """

    async def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[Delivery]:
        async with self._database.transaction() as conn:
            claimed = await conn.fetch(
                self._CLAIM, now, now + timedelta(seconds=lease_seconds), limit
            )
            if not claimed:
                return []
            rows = await conn.fetch(self._CLAIMED, [row["id"] for row in claimed])
            orphaned = [row["id"] for row in rows if row["device_id"] is None]
            if orphaned:
                await conn.execute(self._ORPHANED, orphaned, now)
        return [
            Delivery(
                id=row["id"],
                notification_id=row["notification_id"],
                patient_id=row["patient_id"],
                kind=row["kind"],
                attempts=row["attempts"],
                notification_kind=row["notification_kind"],
                locale=row["locale"],
                device=Device(
                    id=row["device_id"],
                    patient_id=row["patient_id"],
                    kind=row["device_kind"],
                    address=row["address"],
                    p256dh=row["p256dh"],
                    auth=row["auth"],
                    name=row["name"],
                    created_at=row["created_at"],
                ),
            )
            for row in rows
            if row["device_id"] is not None
        ]

    _DELIVERED = """
        UPDATE notification_delivery
        SET status = 'delivered', finished_at = $2, claimed_until = NULL
        WHERE id = $1
    """

    async def delivered(self, delivery_id: UUID, now: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._DELIVERED, delivery_id, now)

    _RETRY = """
        UPDATE notification_delivery
        SET due_at = $2, claimed_until = NULL, last_error = $3
        WHERE id = $1 AND status = 'pending'
    """

    async def retry(self, delivery_id: UUID, due_at: datetime, error: str) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._RETRY, delivery_id, due_at, error[:1000])

    _DEAD = """
        UPDATE notification_delivery
        SET status = 'dead', finished_at = $2, claimed_until = NULL, last_error = $3
        WHERE id = $1
    """

    async def dead(self, delivery_id: UUID, now: datetime, error: str) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._DEAD, delivery_id, now, error[:1000])

    # The device's other pending deliveries are closed when claimed (it is gone).
    _GONE = """
        UPDATE notification_delivery
        SET status = 'gone', finished_at = $2, claimed_until = NULL, last_error = $3
        WHERE id = $1
    """
    _REMOVE_DEVICE = "DELETE FROM push_device WHERE id = $1 AND patient_id = $2"

    async def gone(self, delivery: Delivery, now: datetime, error: str) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._GONE, delivery.id, now, error[:1000])
            await conn.execute(self._REMOVE_DEVICE, delivery.device.id, delivery.patient_id)

    _DEAD_LETTERS = """
        SELECT id, notification_id, patient_id, kind, attempts, last_error, finished_at
        FROM notification_delivery WHERE status = 'dead'
        ORDER BY finished_at DESC, id DESC LIMIT $1
    """

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._DEAD_LETTERS, limit)
        return [
            DeadLetter(
                delivery_id=row["id"],
                notification_id=row["notification_id"],
                patient_id=row["patient_id"],
                kind=row["kind"],
                attempts=row["attempts"],
                last_error=row["last_error"],
                finished_at=row["finished_at"],
            )
            for row in rows
        ]
