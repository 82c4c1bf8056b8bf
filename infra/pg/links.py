"""Patient links to hospitals. Every query names the permit's patient, except the
hospital-side look-ups by code digest or by the hospital's own patient reference,
which are how the patient is found in the first place."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from domain.access import Permit
from domain.hospitals.links import Link
from infra.pg.database import Database
from infra.secret_box import SecretBox

_COLUMNS = """l.id, l.patient_id, l.hospital_id, l.consent_id, l.expires_at, l.created_at,
              l.patient_ref, l.linked_at, c.revoked_at"""


def _link(row: asyncpg.Record) -> Link:
    return Link(
        id=row["id"],
        patient_id=row["patient_id"],
        hospital_id=row["hospital_id"],
        consent_id=row["consent_id"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        patient_ref=row["patient_ref"],
        linked_at=row["linked_at"],
        revoked_at=row["revoked_at"],
    )


def _code_context(link_id: UUID) -> bytes:
    return b"phr link code:" + link_id.bytes


class PgLinkStore:
    def __init__(self, database: Database, box: SecretBox):
        self._database = database
        self._box = box

    _INSERT = """
        INSERT INTO hospital_link (id, patient_id, hospital_id, consent_id, code_digest, code_sealed,
                                   expires_at, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (hospital_id, code_digest) WHERE linked_at IS NULL DO NOTHING
        RETURNING id
    """

    async def create(self, permit: Permit, link: Link, code_digest: bytes, code: str) -> bool:
        sealed = self._box.seal(code.encode(), context=_code_context(link.id))
        async with self._database.transaction() as conn:
            inserted = await conn.fetchval(
                self._INSERT,
                link.id,
                permit.patient_id,
                link.hospital_id,
                link.consent_id,
                code_digest,
                sealed,
                link.expires_at,
                link.created_at,
            )
        return inserted is not None

    _GET = f"""
        SELECT {_COLUMNS} FROM hospital_link l
        JOIN consent c ON c.patient_id = l.patient_id AND c.id = l.consent_id
        WHERE l.patient_id = $1 AND l.id = $2
    """

    async def get(self, permit: Permit, link_id: UUID) -> Link | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._GET, permit.patient_id, link_id)
        return _link(row) if row else None

    _LIST = f"""
        SELECT {_COLUMNS} FROM hospital_link l
        JOIN consent c ON c.patient_id = l.patient_id AND c.id = l.consent_id
        WHERE l.patient_id = $1
        ORDER BY l.created_at DESC, l.id DESC
    """

    async def list(self, permit: Permit) -> list[Link]:
        async with self._database.transaction() as conn:
            rows = await conn.fetch(self._LIST, permit.patient_id)
        return [_link(row) for row in rows]

    _CODE = "SELECT code_sealed FROM hospital_link WHERE patient_id = $1 AND id = $2 AND linked_at IS NULL"

    async def pending_code(self, permit: Permit, link_id: UUID) -> str | None:
        async with self._database.transaction() as conn:
            sealed = await conn.fetchval(self._CODE, permit.patient_id, link_id)
        if sealed is None:
            return None
        return self._box.open(bytes(sealed), context=_code_context(link_id)).decode()

    # Pending links first: a used code's digest may repeat in a later pending link.
    _BY_CODE = f"""
        SELECT {_COLUMNS} FROM hospital_link l
        JOIN consent c ON c.patient_id = l.patient_id AND c.id = l.consent_id
        WHERE l.hospital_id = $1 AND l.code_digest = $2
        ORDER BY (l.linked_at IS NULL) DESC, l.created_at DESC
        LIMIT 1
        FOR UPDATE OF l
    """

    async def by_code(self, hospital_id: UUID, code_digest: bytes) -> Link | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._BY_CODE, hospital_id, code_digest)
        return _link(row) if row else None

    _COMPLETE = """
        UPDATE hospital_link SET patient_ref = $3, linked_at = $4, code_sealed = NULL
        WHERE patient_id = $1 AND id = $2 AND linked_at IS NULL
    """

    async def complete(self, permit: Permit, link_id: UUID, patient_ref: str, at: datetime) -> None:
        async with self._database.transaction() as conn:
            await conn.execute(self._COMPLETE, permit.patient_id, link_id, patient_ref, at)

    _BY_REF = f"""
        SELECT {_COLUMNS} FROM hospital_link l
        JOIN consent c ON c.patient_id = l.patient_id AND c.id = l.consent_id
        WHERE l.hospital_id = $1 AND l.patient_ref = $2 AND l.linked_at IS NOT NULL
        ORDER BY (c.revoked_at IS NULL) DESC, l.linked_at DESC
        LIMIT 1
    """

    async def for_patient_ref(self, hospital_id: UUID, patient_ref: str) -> Link | None:
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(self._BY_REF, hospital_id, patient_ref)
        return _link(row) if row else None
