"""Uploads in PostgreSQL: one row per presigned upload, filtered by the permit's
patient in every query but the sweeper's scan for expired pending rows."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.access import Permit
from domain.uploads.upload import Upload
from infra.pg.database import Database

_COLUMNS = (
    "u.id, u.patient_id, u.status, u.key, u.filename, u.content_type, u.size, u.record_id, "
    "u.created_at, u.expires_at"
)


def _upload(row: asyncpg.Record) -> Upload:
    return Upload(
        id=row["id"],
        patient_id=row["patient_id"],
        status=row["status"],
        key=row["key"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        record_id=row["record_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


class PgUploadStore:
    def __init__(self, database: Database):
        self._database = database

    _ADD = """
        INSERT INTO upload (id, patient_id, status, key, filename, content_type, size,
                            created_at, expires_at)
        VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8)
    """

    async def add(self, permit: Permit, upload: Upload) -> None:
        if upload.patient_id != permit.patient_id:
            raise ValueError("an upload is added for the permit's patient only")
        async with self._database.transaction() as conn:
            await conn.execute(
                self._ADD,
                upload.id,
                permit.patient_id,
                upload.key,
                upload.filename,
                upload.content_type,
                upload.size,
                upload.created_at,
                upload.expires_at,
            )

    _GET = f"SELECT {_COLUMNS} FROM upload u WHERE u.patient_id = $1 AND u.id = $2"

    async def get(self, permit: Permit, upload_id: UUID, *, lock: bool = False) -> Upload | None:
        sql = self._GET + (" FOR UPDATE" if lock else "")
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(sql, permit.patient_id, upload_id)
        return _upload(row) if row else None

    _COMPLETE = """
        UPDATE upload SET status = 'completed', record_id = $3, completed_at = $4, key = $5
        WHERE patient_id = $1 AND id = $2 AND status = 'pending'
    """

    async def mark_completed(
        self, permit: Permit, upload_id: UUID, record_id: UUID, at: datetime, final_key: str
    ) -> None:
        async with self._database.transaction() as conn:
            status = await conn.execute(
                self._COMPLETE, permit.patient_id, upload_id, record_id, at, final_key
            )
        if status != "UPDATE 1":
            raise RuntimeError("the upload was not pending when it was completed")

    # The record is joined so that a scoped permit (a share) sees a file only if
    # it sees the record.
    _FOR_RECORD = f"""
        SELECT {_COLUMNS}, r.resource_type
        FROM upload u
        JOIN record r ON r.patient_id = u.patient_id AND r.id = u.record_id
        WHERE u.patient_id = $1 AND u.record_id = $2 AND u.status = 'completed'
          AND (cardinality($3::text[]) = 0 OR r.resource_type = ANY($3::text[]))
    """

    async def for_record(self, permit: Permit, record_id: UUID) -> tuple[Upload, str] | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                self._FOR_RECORD, permit.patient_id, record_id, list(permit.scope.resource_types)
            )
        return (_upload(row), row["resource_type"]) if row else None

    _EXPIRED = f"""
        SELECT {_COLUMNS} FROM upload u
        WHERE u.status = 'pending' AND u.expires_at < $1
        ORDER BY u.expires_at
        LIMIT $2
    """

    async def expired_pending(self, expired_before: datetime, limit: int) -> list[Upload]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._EXPIRED, expired_before, limit)
        return [_upload(row) for row in rows]

    _DELETE_PENDING = "DELETE FROM upload WHERE patient_id = $1 AND id = $2 AND status = 'pending'"

    async def delete_pending(self, upload: Upload) -> bool:
        async with self._database.transaction() as conn:
            status = await conn.execute(self._DELETE_PENDING, upload.patient_id, upload.id)
        return status == "DELETE 1"
