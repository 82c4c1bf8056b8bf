"""The patient's own imaging in PostgreSQL: studies, series, instances and CD
imports, every query filtered by the permit's patient. A permit scoped to
resource types (a share) sees imaging only if its scope includes ImagingStudy."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.access import Permit
from domain.errors import UnreadableDicom
from domain.imaging.dicom import DicomInstance
from domain.imaging.store import ImportStatus, StoredInstance, StoredSeries, StoredStudy
from infra.pg.database import Database


def _visible(permit: Permit) -> bool:
    types = permit.scope.resource_types
    return not types or "ImagingStudy" in types


class PgImagingStore:
    def __init__(self, database: Database):
        self._database = database

    _ADD_STUDY = """
        INSERT INTO imaging_study (patient_id, study_uid, patient_aliases, attributes,
                                   created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $5)
        ON CONFLICT (patient_id, study_uid) DO UPDATE
        SET patient_aliases = ARRAY(
                SELECT DISTINCT unnest(imaging_study.patient_aliases || EXCLUDED.patient_aliases)
                ORDER BY 1),
            updated_at = EXCLUDED.updated_at
    """
    _ADD_SERIES = """
        INSERT INTO imaging_series (patient_id, study_uid, series_uid, modality, body_part,
                                    description, number, attributes)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (patient_id, series_uid) DO NOTHING
    """
    _SERIES_STUDY = "SELECT study_uid FROM imaging_series WHERE patient_id = $1 AND series_uid = $2"
    _ADD_INSTANCE = """
        INSERT INTO imaging_instance (patient_id, series_uid, instance_uid, sop_class_uid, number,
                                      transfer_syntax, frames, rows, columns, key, size,
                                      metadata, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT DO NOTHING
    """

    async def add_instance(
        self, permit: Permit, instance: DicomInstance, *, key: str, size: int, at: datetime
    ) -> bool:
        pid = permit.patient_id
        aliases = [instance.patient_id] if instance.patient_id else []
        async with self._database.transaction() as conn:
            owner = await conn.fetchval(self._SERIES_STUDY, pid, instance.series_uid)
            if owner is not None and owner != instance.study_uid:
                # A series UID already kept under another study: the file
                # contradicts what is kept, and the kept study wins.
                raise UnreadableDicom("The file's series belongs to another study.")
            await conn.execute(
                self._ADD_STUDY, pid, instance.study_uid, aliases, instance.study_attributes(), at
            )
            await conn.execute(
                self._ADD_SERIES,
                pid,
                instance.study_uid,
                instance.series_uid,
                instance.modality,
                instance.body_part,
                instance.series_description,
                instance.series_number,
                instance.series_attributes(),
            )
            status = await conn.execute(
                self._ADD_INSTANCE,
                pid,
                instance.series_uid,
                instance.instance_uid,
                instance.sop_class_uid,
                instance.instance_number,
                instance.transfer_syntax,
                instance.frames,
                instance.rows,
                instance.columns,
                key,
                size,
                instance.metadata,
                at,
            )
        return status == "INSERT 0 1"

    _STUDIES = """
        SELECT st.study_uid, st.record_id, st.patient_aliases, st.attributes,
               se.series_uid, se.modality, se.body_part, se.description, se.number,
               se.attributes AS series_attributes, se.preview_key, se.preview_width,
               se.preview_height,
               (SELECT count(*) FROM imaging_instance i
                WHERE i.patient_id = se.patient_id AND i.series_uid = se.series_uid) AS instances
        FROM imaging_study st
        LEFT JOIN imaging_series se
            ON se.patient_id = st.patient_id AND se.study_uid = st.study_uid
        WHERE st.patient_id = $1 AND ($2::text IS NULL OR st.study_uid = $2)
        ORDER BY st.created_at, st.study_uid, se.number NULLS LAST, se.series_uid
    """

    async def studies(self, permit: Permit, study_uid: str | None = None) -> list[StoredStudy]:
        if not _visible(permit):
            return []
        # One statement reads one snapshot: no BEGIN/COMMIT round trips of its own
        # (it joins the caller's transaction when there is one).
        async with self._database.connection() as conn:
            rows = await conn.fetch(self._STUDIES, permit.patient_id, study_uid)
        grouped: dict[str, tuple[asyncpg.Record, list[StoredSeries]]] = {}
        for row in rows:
            entry = grouped.setdefault(row["study_uid"], (row, []))
            if row["series_uid"] is None:
                continue
            entry[1].append(
                StoredSeries(
                    study_uid=row["study_uid"],
                    series_uid=row["series_uid"],
                    modality=row["modality"],
                    body_part=row["body_part"],
                    description=row["description"],
                    number=row["number"],
                    attributes=row["series_attributes"],
                    instance_count=row["instances"],
                    preview_key=row["preview_key"],
                    preview_width=row["preview_width"],
                    preview_height=row["preview_height"],
                )
            )
        return [
            StoredStudy(
                study_uid=uid,
                record_id=row["record_id"],
                patient_aliases=tuple(row["patient_aliases"]),
                attributes=row["attributes"],
                series=tuple(series),
            )
            for uid, (row, series) in grouped.items()
        ]

    _INSTANCES = """
        SELECT se.study_uid, i.series_uid, i.instance_uid, i.sop_class_uid, i.number,
               i.transfer_syntax, i.frames, i.rows, i.columns, i.key, i.size, {metadata}
        FROM imaging_instance i
        JOIN imaging_series se ON se.patient_id = i.patient_id AND se.series_uid = i.series_uid
        WHERE i.patient_id = $1 AND ($2::text IS NULL OR se.study_uid = $2)
          AND ($3::text IS NULL OR i.series_uid = $3)
          AND ($4::text IS NULL OR i.instance_uid = $4)
        ORDER BY se.study_uid, se.number NULLS LAST, i.series_uid, i.number NULLS LAST,
                 i.instance_uid
    """

    async def instances(
        self,
        permit: Permit,
        study_uid: str | None,
        series_uid: str | None = None,
        instance_uid: str | None = None,
        *,
        with_metadata: bool = False,
    ) -> list[StoredInstance]:
        if not _visible(permit):
            return []
        sql = self._INSTANCES.format(metadata="i.metadata" if with_metadata else "NULL AS metadata")
        async with self._database.transaction() as conn:
            rows = await conn.fetch(sql, permit.patient_id, study_uid, series_uid, instance_uid)
        return [
            StoredInstance(
                study_uid=row["study_uid"],
                series_uid=row["series_uid"],
                instance_uid=row["instance_uid"],
                sop_class_uid=row["sop_class_uid"],
                number=row["number"],
                transfer_syntax=row["transfer_syntax"],
                frames=row["frames"],
                rows=row["rows"],
                columns=row["columns"],
                key=row["key"],
                size=row["size"],
                metadata=row["metadata"],
            )
            for row in rows
        ]

    async def set_record(self, permit: Permit, study_uid: str, record_id: UUID) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                "UPDATE imaging_study SET record_id = $3 WHERE patient_id = $1 AND study_uid = $2",
                permit.patient_id,
                study_uid,
                record_id,
            )

    async def set_preview(
        self, permit: Permit, series_uid: str, key: str, width: int, height: int
    ) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                "UPDATE imaging_series SET preview_key = $3, preview_width = $4, "
                "preview_height = $5 WHERE patient_id = $1 AND series_uid = $2",
                permit.patient_id,
                series_uid,
                key,
                width,
                height,
            )

    async def consume_upload(self, permit: Permit, upload_id: UUID) -> bool:
        async with self._database.transaction() as conn:
            status = await conn.execute(
                "DELETE FROM upload WHERE patient_id = $1 AND id = $2 AND status = 'pending'",
                permit.patient_id,
                upload_id,
            )
        return status == "DELETE 1"

    _ADD_IMPORT = """
        INSERT INTO imaging_import (upload_id, patient_id, key, filename, status, instances,
                                    duplicates, ignored, study_uids, reasons, created_at,
                                    updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    """

    async def add_import(self, permit: Permit, status: ImportStatus, key: str) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._ADD_IMPORT,
                status.upload_id,
                permit.patient_id,
                key,
                status.filename,
                status.status,
                status.instances,
                status.duplicates,
                status.ignored,
                list(status.study_uids),
                list(status.reasons),
                status.created_at,
                status.updated_at,
            )

    _UPDATE_IMPORT = """
        UPDATE imaging_import
        SET status = $3, instances = $4, duplicates = $5, ignored = $6, study_uids = $7,
            reasons = $8, updated_at = $9
        WHERE patient_id = $1 AND upload_id = $2
    """

    async def update_import(self, permit: Permit, status: ImportStatus) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(
                self._UPDATE_IMPORT,
                permit.patient_id,
                status.upload_id,
                status.status,
                status.instances,
                status.duplicates,
                status.ignored,
                list(status.study_uids),
                list(status.reasons),
                status.updated_at,
            )

    _GET_IMPORT = """
        SELECT upload_id, key, filename, status, instances, duplicates, ignored, study_uids,
               reasons, created_at, updated_at
        FROM imaging_import WHERE patient_id = $1 AND upload_id = $2
    """

    async def get_import(self, permit: Permit, upload_id: UUID) -> tuple[ImportStatus, str] | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET_IMPORT, permit.patient_id, upload_id)
        if row is None:
            return None
        return (
            ImportStatus(
                upload_id=row["upload_id"],
                filename=row["filename"],
                status=row["status"],
                instances=row["instances"],
                duplicates=row["duplicates"],
                ignored=row["ignored"],
                study_uids=tuple(row["study_uids"]),
                reasons=tuple(row["reasons"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            ),
            row["key"],
        )
