"""The baseline for bench/records.py: a bare Litestar + asyncpg endpoint that
returns the same row as GET /v1/records/{id}, with no token, policy or audit."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State

from infra.pg.database import _init_connection

_SQL = """
    SELECT id, patient_id, source_kind, hospital_id, resource_type, source_resource_id,
           is_supporting, category, code_system, code, display, effective_at, status, value,
           unit, version, source_version, source_updated_at, resource, received_at, updated_at
    FROM record WHERE patient_id = $1 AND id = $2
"""


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=2, max_size=10, init=_init_connection
    )
    # The same server settings as phr's serving process (api/app.py, freeze_heap).
    gc.collect()
    gc.freeze()
    yield
    await app.state.pool.close()


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/bare/{patient_id:uuid}/{record_id:uuid}")
async def bare_record(state: State, patient_id: UUID, record_id: UUID) -> Response[Any]:
    async with state.pool.acquire() as conn:
        row = await conn.fetchrow(_SQL, patient_id, record_id)
    return Response(msgspec.json.encode(dict(row)), media_type="application/json")


@get("/bare-page/{patient_id:uuid}")
async def bare_page(state: State, patient_id: UUID) -> Response[Any]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, resource_type, category, display, value, unit, status, effective_at, sort_at, "
            "source_kind, hospital_id FROM record WHERE patient_id = $1 AND NOT is_supporting "
            "ORDER BY sort_at DESC, id DESC LIMIT 51",
            patient_id,
        )
    return Response(
        msgspec.json.encode({"items": [dict(r) for r in rows[:50]]}), media_type="application/json"
    )


def create_app() -> Litestar:
    return Litestar([healthz, bare_record, bare_page], lifespan=[lifespan])
