"""Account erasure: one DELETE; every patient table references `patient` with
ON DELETE CASCADE, so the rows of every feature go with it. Before it, the traces
that keep the patient's data from coming back: tombstones for the patient's
hospital references (and their parked pushes deleted), and a second file sweep."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.access import Permit
from infra.pg.database import Database


class PgAccountEraser:
    def __init__(self, database: Database):
        self._database = database

    _ERASE = "DELETE FROM patient WHERE id = $1"

    # The audit events stay (their leaves are in the transparency log); their
    # personal fields are blanked by a function that runs as the table's owner and
    # acts only on a patient that no longer exists.
    _ERASE_AUDIT_DETAILS = "SELECT audit_erase_patient($1)"

    async def erase(self, permit: Permit) -> bool:
        async with self._database.transaction() as conn:
            status = await conn.execute(self._ERASE, permit.patient_id)
            if status == "DELETE 1":
                await conn.execute(self._ERASE_AUDIT_DETAILS, permit.patient_id)
        return status == "DELETE 1"

    _REFS = """
        SELECT DISTINCT hospital_id, patient_ref FROM hospital_link
        WHERE patient_id = $1 AND patient_ref IS NOT NULL
    """

    async def patient_refs(self, permit: Permit) -> list[tuple[UUID, str]]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._REFS, permit.patient_id)
        return [(row["hospital_id"], row["patient_ref"]) for row in rows]

    _BURY = """
        INSERT INTO erased_patient_ref (hospital_id, ref_digest, erased_at)
        SELECT * FROM unnest($1::uuid[], $2::bytea[], array_fill($3::timestamptz, ARRAY[$4::int]))
        ON CONFLICT (hospital_id, ref_digest) DO UPDATE SET erased_at = excluded.erased_at
    """
    _DROP_PARKED = """
        DELETE FROM webhook_parked_push p
        USING unnest($1::uuid[], $2::text[]) AS r(hospital_id, patient_ref)
        WHERE p.hospital_id = r.hospital_id AND p.patient_ref = r.patient_ref
    """

    async def bury_patient_refs(
        self, permit: Permit, refs: list[tuple[UUID, str, bytes]], at: datetime
    ) -> None:
        if not refs:
            return
        hospitals = [hospital_id for hospital_id, _, _ in refs]
        async with self._database.transaction() as conn:
            await conn.execute(
                self._BURY, hospitals, [digest for _, _, digest in refs], at, len(refs)
            )
            await conn.execute(self._DROP_PARKED, hospitals, [ref for _, ref, _ in refs])

    _SCHEDULE = """
        INSERT INTO erased_file_prefix (prefix, sweep_after) VALUES ($1, $2)
        ON CONFLICT (prefix) DO UPDATE SET sweep_after = excluded.sweep_after
    """

    async def schedule_file_sweep(self, permit: Permit, prefix: str, after: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._SCHEDULE, prefix, after)

    _DUE = """
        SELECT prefix FROM erased_file_prefix WHERE sweep_after <= $1
        ORDER BY sweep_after LIMIT $2
    """

    async def due_file_sweeps(self, now: datetime, limit: int) -> list[str]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._DUE, now, limit)
        return [row["prefix"] for row in rows]

    async def file_sweep_done(self, prefix: str) -> None:
        async with self._database.transaction() as conn:
            await conn.execute("DELETE FROM erased_file_prefix WHERE prefix = $1", prefix)
