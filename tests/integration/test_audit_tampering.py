"""Tampering with the audit log by someone with superuser access to the database
(triggers switched off) is detected: by the patient's app holding an older
checkpoint, with its own code, and by /v1/audit/verify given that checkpoint.

Each test rewrites history, so each gets a database of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from domain.clock import FixedClock
from infra.pg.migration_runner import migrate
from tests.audit_support import PatientApp, seal_everything
from tests.conftest import register_patient, with_database
from tests.integration.test_audited_round_trips import statements_sent
from tests.integration.test_transparency_log import activity


@pytest.fixture
def database_dsn(admin_dsn: str) -> Iterator[str]:
    name = f"phr_tamper_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await migrate(with_database(admin_dsn, name))

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        yield with_database(admin_dsn, name)
    finally:
        asyncio.run(drop())


async def _patient_events(conn, patient_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT e.id, l.leaf_index FROM audit_event e JOIN audit_leaf l ON l.event_id = e.id "
        "WHERE e.patient_id = $1::uuid ORDER BY l.leaf_index",
        patient_id,
    )


async def delete_newest(conn, patient_id: str) -> None:
    """Cut the log back to before the patient's last three events, as if they
    never happened: events, leaves, nodes and checkpoints after that point."""
    events = await _patient_events(conn, patient_id)
    cut = events[-3]["leaf_index"]
    await conn.execute(
        "DELETE FROM audit_event WHERE id IN (SELECT event_id FROM audit_leaf WHERE leaf_index >= $1)",
        cut,
    )
    await conn.execute("DELETE FROM audit_leaf WHERE leaf_index >= $1", cut)
    await conn.execute("DELETE FROM audit_tree_node WHERE (node_index + 1) << level > $1", cut)
    await conn.execute("DELETE FROM audit_checkpoint WHERE tree_size > $1", cut)
    await conn.execute("UPDATE audit_sequencer SET tree_size = $1", cut)


async def delete_middle(conn, patient_id: str) -> None:
    events = await _patient_events(conn, patient_id)
    victim = events[len(events) // 2]
    await conn.execute("DELETE FROM audit_event WHERE id = $1", victim["id"])
    await conn.execute("DELETE FROM audit_leaf WHERE event_id = $1", victim["id"])


async def edit_one(conn, patient_id: str) -> None:
    events = await _patient_events(conn, patient_id)
    await conn.execute(
        "UPDATE audit_event SET actor_type = 'share', actor_id = 'nobody' WHERE id = $1",
        events[1]["id"],
    )


async def reorder_two(conn, patient_id: str) -> None:
    events = await _patient_events(conn, patient_id)
    first, second = events[1], events[2]
    swap = "UPDATE audit_leaf SET leaf_index = $2 WHERE leaf_index = $1"
    parked = 10**15
    await conn.execute(swap, first["leaf_index"], parked)
    await conn.execute(swap, second["leaf_index"], first["leaf_index"])
    await conn.execute(swap, parked, second["leaf_index"])


async def delete_history(conn, patient_id: str) -> None:
    await conn.execute("DELETE FROM audit_leaf WHERE patient_id = $1::uuid", patient_id)
    await conn.execute("DELETE FROM audit_event WHERE patient_id = $1::uuid", patient_id)


@pytest.mark.parametrize(
    "tamper", [delete_newest, delete_middle, edit_one, reorder_two, delete_history]
)
async def test_tampering_by_a_superuser_is_detected_from_an_older_checkpoint(
    client, services, patient, other_patient, superuser_conn, tamper
):
    app = PatientApp(client, patient)
    await activity(client, patient, reads=4)
    await activity(client, other_patient, reads=2)
    await seal_everything(services, superuser_conn)
    await app.visit()
    assert len(app.remembered) >= 6

    # A superuser switches the append-only triggers off and rewrites history.
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL session_replication_role = replica")
        await tamper(superuser_conn, app.patient.id)

    found = await app.check()
    assert found, f"{tamper.__name__} went unnoticed by the app"
    verdict = await client.get(
        "/v1/audit/verify", params={"checkpoint": app.kept_note}, headers=patient.headers
    )
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["valid"] is False, verdict.json()
    assert verdict.json()["findings"]


async def test_a_deleted_leaf_row_is_reported_once_the_full_count_is_a_minute_old(
    settings, services, superuser_conn
):
    """/v1/audit/verify counts the whole log at most once a minute per process (a
    full count per call would let any patient make the database scan the
    service-wide log at will); in between it counts only the leaves sealed since.
    A leaf row deleted with its event, which the stored tree cannot show, is then
    reported by the first verification after the full count is a minute old, and
    by every one after it."""
    clock = FixedClock(datetime.now(UTC))
    from api.app import create_app

    async with AsyncTestClient(
        app=create_app(settings, clock=clock), base_url="http://testserver.local"
    ) as client:
        patient, other = await register_patient(client), await register_patient(client)
        await activity(client, patient, reads=2)
        await activity(client, other, reads=2)
        await seal_everything(services, superuser_conn)

        async def verify() -> tuple[dict, list[str]]:
            async with statements_sent(SimpleNamespace(client=client)) as sent:
                answer = await client.get("/v1/audit/verify", headers=patient.headers)
            assert answer.status_code == 200, answer.text
            counts = [s for s in sent if "count(*) FROM audit_leaf" in s]
            return answer.json(), counts

        first, counted = await verify()
        assert first["valid"] is True and len(counted) == 1

        # Another patient's event, whose leaf is not the sibling of one of the
        # patient's own (that sibling's inclusion proof would give it away at once).
        leaves = await superuser_conn.fetch(
            "SELECT leaf_index, event_id, patient_id FROM audit_leaf"
        )
        own = {row["leaf_index"] for row in leaves if str(row["patient_id"]) == patient.id}
        victim = next(
            row
            for row in leaves
            if str(row["patient_id"]) == other.id and row["leaf_index"] ^ 1 not in own
        )
        async with superuser_conn.transaction():
            await superuser_conn.execute("SET LOCAL session_replication_role = replica")
            await superuser_conn.execute(
                "DELETE FROM audit_leaf WHERE event_id = $1", victim["event_id"]
            )
            await superuser_conn.execute(
                "DELETE FROM audit_event WHERE id = $1", victim["event_id"]
            )
        # The log grows (the first verification's own event, more reads): within the
        # minute the new leaves alone are counted, and counted right.
        await activity(client, patient, reads=2)
        await seal_everything(services, superuser_conn)
        clock.advance(seconds=59)
        within, counted = await verify()
        assert within["treeSize"] > first["treeSize"]
        assert within["valid"] is True, within
        assert len(counted) == 1  # only the range sealed since the full count

        clock.advance(seconds=2)
        after, _ = await verify()
        assert after["valid"] is False
        assert {"problem": "leaves-missing"} in [
            {"problem": f["problem"]} for f in after["findings"]
        ], after
        again, _ = await verify()
        assert "leaves-missing" in [f["problem"] for f in again["findings"]], again
