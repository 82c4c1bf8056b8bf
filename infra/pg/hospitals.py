"""Hospitals and their webhook secrets (sealed with the secret box)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.hospitals.hospital import Hospital, WebhookSecret
from infra.pg.database import Database
from infra.secret_box import SecretBox


def _secret_context(secret_id: UUID, hospital_id: UUID) -> bytes:
    return b"phr webhook secret:" + secret_id.bytes + hospital_id.bytes


def _hospital(row) -> Hospital:
    return Hospital(id=row["id"], name=row["name"], created_at=row["created_at"], city=row["city"])


class PgHospitalStore:
    def __init__(self, database: Database, box: SecretBox):
        self._database = database
        self._box = box

    _INSERT_HOSPITAL = "INSERT INTO hospital (id, name, created_at, city) VALUES ($1, $2, $3, $4)"
    _INSERT_SECRET = """
        INSERT INTO hospital_secret (id, hospital_id, sealed, created_at, retires_at)
        VALUES ($1, $2, $3, $4, $5)
    """

    async def add(self, hospital: Hospital, secret: WebhookSecret) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._INSERT_HOSPITAL,
                hospital.id,
                hospital.name,
                hospital.created_at,
                hospital.city,
            )
            await self._insert_secret(conn, secret)

    async def _insert_secret(self, conn, secret: WebhookSecret) -> None:
        sealed = self._box.seal(secret.key, context=_secret_context(secret.id, secret.hospital_id))
        await conn.execute(
            self._INSERT_SECRET,
            secret.id,
            secret.hospital_id,
            sealed,
            secret.created_at,
            secret.retires_at,
        )

    _GET = "SELECT id, name, created_at, city FROM hospital WHERE id = $1"

    async def get(self, hospital_id: UUID) -> Hospital | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, hospital_id)
        return _hospital(row) if row else None

    _ALL = "SELECT id, name, created_at, city FROM hospital ORDER BY name, id"

    async def all(self) -> list[Hospital]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._ALL)
        return [_hospital(row) for row in rows]

    # Secrets live now keep their (earlier) retirement; the current one(s) retire
    # at the end of the grace period. Long-retired ones are left as history.
    _RETIRE = """
        UPDATE hospital_secret SET retires_at = $2
        WHERE hospital_id = $1 AND (retires_at IS NULL OR retires_at > $2)
    """

    async def rotate_secret(self, secret: WebhookSecret, retire_others_at: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                "SELECT 1 FROM hospital_secret WHERE hospital_id = $1 FOR UPDATE",
                secret.hospital_id,
            )
            await conn.execute(self._RETIRE, secret.hospital_id, retire_others_at)
            await self._insert_secret(conn, secret)

    _LIVE = """
        SELECT id, hospital_id, sealed, created_at, retires_at FROM hospital_secret
        WHERE hospital_id = $1 AND (retires_at IS NULL OR retires_at > $2)
        ORDER BY created_at DESC
    """

    async def live_secrets(self, hospital_id: UUID, now: datetime) -> list[WebhookSecret]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._LIVE, hospital_id, now)
        return [
            WebhookSecret(
                id=row["id"],
                hospital_id=row["hospital_id"],
                key=self._box.open(
                    bytes(row["sealed"]), context=_secret_context(row["id"], row["hospital_id"])
                ),
                created_at=row["created_at"],
                retires_at=row["retires_at"],
            )
            for row in rows
        ]
