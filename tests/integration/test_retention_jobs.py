"""The worker's housekeeping jobs, run as the worker runs them (its periodic
jobs), with the clock moved forward: webhook delivery ids go once past their
replay window, parked pushes nobody claimed go after 30 days, and a link made
after that finds nothing parked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.clock import FixedClock
from domain.retention import PARKED_PUSH_TTL, WEBHOOK_DELIVERY_REPLAY_WINDOW
from infra.background_jobs import build_worker
from infra.bootstrap import close_services, open_services
from tests.hospital_support import new_hospital, new_link
from tests.records_support import bundle, observation


async def counts(conn, hospital_id: str) -> tuple[int, int]:
    deliveries = await conn.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE hospital_id = $1::uuid", hospital_id
    )
    parked = await conn.fetchval(
        "SELECT count(*) FROM webhook_parked_push WHERE hospital_id = $1::uuid", hospital_id
    )
    return deliveries, parked


async def run_housekeeping(settings, clock) -> None:
    services = await open_services(settings, settings.database_url, clock=clock)
    try:
        worker = build_worker(services)
        for name in (
            "webhooks.prune_deliveries",
            "webhooks.drop_parked",
            "jobs.prune_finished",
            "uploads.purge_expired",
        ):
            assert await worker.run_periodic(name, force=True)
    finally:
        await close_services(services)


async def test_delivery_ids_and_unclaimed_parked_pushes_are_dropped_when_due(
    client, settings, patient, superuser_conn
):
    hospital = await new_hospital(client, settings)
    parked = await hospital.push("MRN-OLD", bundle(observation("old-1")))
    assert parked.status_code == 202
    assert await counts(superuser_conn, hospital.id) == (1, 1)
    now = datetime.now(UTC)

    # Within the replay window and the parking time: nothing goes.
    await run_housekeeping(settings, FixedClock(now + timedelta(days=1)))
    assert await counts(superuser_conn, hospital.id) == (1, 1)

    # Past the replay window (7 days), before 30 days: the delivery id goes.
    await run_housekeeping(
        settings, FixedClock(now + WEBHOOK_DELIVERY_REPLAY_WINDOW + timedelta(hours=1))
    )
    assert await counts(superuser_conn, hospital.id) == (0, 1)

    # Past 30 days: the unclaimed push goes too.
    await run_housekeeping(settings, FixedClock(now + PARKED_PUSH_TTL + timedelta(hours=1)))
    assert await counts(superuser_conn, hospital.id) == (0, 0)

    link = await new_link(client, patient, hospital)
    done = await hospital.link(link["code"], "MRN-OLD")
    assert done.status_code == 200 and done.json()["parkedApplied"] == 0
