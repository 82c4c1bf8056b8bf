"""Checkpoints past the last day are thinned to the last one of each hour by the
worker's housekeeping job, and by nothing else: the tree and every proof stay
valid, a thinned size is simply no longer published, and neither the serving role
nor the owner can delete a checkpoint outside that rule.

The test back-dates checkpoints, so it gets a database of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from infra.background_jobs import build_worker
from tests.audit_support import PatientApp, seal_everything
from tests.integration.test_audit_tampering import database_dsn  # noqa: F401 (own database)
from tests.integration.test_transparency_log import activity


async def _checkpoint_sizes(conn) -> list[int]:
    return [r["tree_size"] for r in await conn.fetch(
        "SELECT tree_size FROM audit_checkpoint ORDER BY tree_size"
    )]  # fmt: skip


async def test_old_checkpoints_keep_one_an_hour_and_proofs_stay_valid(
    client, services, patient, superuser_conn
):
    app = PatientApp(client, patient)
    for _ in range(4):
        await activity(client, patient, reads=1)
        await seal_everything(services, superuser_conn)
    await app.visit()
    sizes = await _checkpoint_sizes(superuser_conn)
    assert len(sizes) >= 4
    oldest, same_hour, next_hour = sizes[0], sizes[1], sizes[2]

    # Age the first three: two in one hour two days ago, one in the hour after.
    ages = {
        oldest: "2026-01-01 10:05Z",
        same_hour: "2026-01-01 10:40Z",
        next_hour: "2026-01-01 11:10Z",
    }
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL session_replication_role = replica")
        for size, signed_at in ages.items():
            await superuser_conn.execute(
                "UPDATE audit_checkpoint SET signed_at = $2 WHERE tree_size = $1",
                size,
                datetime.fromisoformat(signed_at).astimezone(UTC),
            )

    worker = build_worker(services)
    assert await worker.run_periodic("audit.thin_checkpoints", force=True)
    assert await _checkpoint_sizes(superuser_conn) == [s for s in sizes if s != oldest]
    # Run again: nothing more goes (the last day and each hour's last stay).
    assert await services.transparency_log.thin_checkpoints() == 0

    gone = await client.get(f"/v1/audit/proof?to={oldest}", headers=patient.headers)
    assert gone.status_code == 404
    kept = await client.get(f"/v1/audit/proof?to={same_hour}", headers=patient.headers)
    assert kept.status_code == 200
    assert await app.check() == []
    verdict = await client.get(
        "/v1/audit/verify", params={"checkpoint": app.kept_note}, headers=patient.headers
    )
    assert verdict.json()["valid"] is True, verdict.json()


async def test_no_one_deletes_a_checkpoint_outside_the_rule(
    client, services, patient, superuser_conn
):
    await activity(client, patient, reads=1)
    await seal_everything(services, superuser_conn)
    sizes = await _checkpoint_sizes(superuser_conn)

    # The serving role has no DELETE right at all.
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL ROLE phr_app")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser_conn.execute("DELETE FROM audit_checkpoint")
    # The owner is refused a recent checkpoint, even with the thinning switch on.
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL phr.audit_thinning = 'on'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await superuser_conn.execute("DELETE FROM audit_checkpoint")
    # The serving role's one way in thins nothing that is recent.
    async with superuser_conn.transaction():
        await superuser_conn.execute("SET LOCAL ROLE phr_app")
        assert await superuser_conn.fetchval("SELECT audit_thin_checkpoints(1000)") == 0
    assert await _checkpoint_sizes(superuser_conn) == sizes
