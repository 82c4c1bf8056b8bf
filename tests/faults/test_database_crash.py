"""PostgreSQL killed under load: the embedded default (phr serve restarts it)
and an external server (restarted by someone else; the pool recovers alone).

While it is down every request answers 200 or 503 problem+json with Retry-After,
within a bounded time; the service is whole again within 5 s of PostgreSQL
being able to run; a hospital retrying its deliveries across the outage has each
one stored exactly once; the log has a line per outage, not a traceback per
request."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

from infra.embedded_postgres import EmbeddedPostgres, dsn_for
from tests.e2e.service import running_service
from tests.faults.traffic import (
    Traffic,
    assert_only_ok_or_unavailable,
    make_world,
    timeline_ids,
    wait_for,
)

# A request may wait out the connect timeout once; nothing may hang.
MAX_ANSWER_SECONDS = 12.0
WHOLE_WITHIN_SECONDS = 5.0


async def stored_deliveries(dsn: str, prefix: str) -> tuple[list[tuple[str, int]], list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        records = await conn.fetch(
            "SELECT source_resource_id, version FROM record WHERE source_resource_id LIKE $1",
            prefix + "%",
        )
        deliveries = await conn.fetch(
            "SELECT delivery_id FROM webhook_delivery WHERE delivery_id LIKE 'fault-%'"
        )
    finally:
        await conn.close()
    return [(r[0], r[1]) for r in records], [d[0] for d in deliveries]


def assert_each_delivered_once(traffic: Traffic, dsn: str) -> None:
    assert not traffic.undelivered, traffic.undelivered
    records, deliveries = asyncio.run(stored_deliveries(dsn, "obs-during-"))
    stored = sorted(source for source, _ in records)
    assert stored == sorted(traffic.delivered), "a delivery was lost or stored twice"
    assert all(version == 1 for _, version in records), "a redelivery made a new version"
    assert len(deliveries) == len(set(deliveries))
    # The patient sees each result once too.
    ids = timeline_ids(traffic.world)
    assert len(ids) == len(set(ids)) == 1 + len(traffic.delivered)


def outage_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "unavailable (" in line and '"phr.outage"' in line]


def assert_quiet_log(log: str, outages: int) -> None:
    noisy = [line for line in log.splitlines() if "Traceback" in line or "unhandled error" in line]
    assert not noisy, "\n".join(line[:3000] for line in noisy[:3])
    lines = outage_lines(log)
    assert 1 <= len(lines) <= outages * 2, lines  # database (and at most its disk) per outage


def test_embedded_postgres_killed_is_restarted_by_phr_serve(serve_data_dir: Path):
    with running_service(serve_data_dir) as service:
        world = make_world(service)
        server = EmbeddedPostgres(serve_data_dir)
        before = server.running()
        assert before is not None
        with Traffic(world) as traffic:
            wait_for(lambda: len(traffic.delivered) >= 3, 30, "deliveries before the crash")
            killed_at = time.monotonic()
            os.kill(before.pid, signal.SIGKILL)
            # phr serve notices, restarts it (crash recovery) and the pool reconnects.
            back = wait_for(
                lambda: (
                    (info := server.running()) is not None
                    and info.pid != before.pid
                    and info.status == "ready"
                ),
                30,
                "the embedded PostgreSQL restarted by phr serve",
            )
            whole = wait_for(
                lambda: traffic.first_ok_after(back) is not None,
                WHOLE_WITHIN_SECONDS + 5,
                "a request answered 200 after the restart",
            )
            delivered_then = len(traffic.delivered)
            wait_for(lambda: len(traffic.delivered) >= delivered_then + 3, 30, "pushes after it")
        assert service.process.poll() is None, "phr serve itself must not restart"
        served_again = traffic.first_ok_after(back)
        assert served_again is not None and served_again - back <= WHOLE_WITHIN_SECONDS, (
            f"whole again {served_again - back:.1f}s after PostgreSQL ran"
        )
        unavailable = [a for a in traffic.answers if a.status == 503 and a.at > killed_at]
        assert unavailable, "the outage was not seen by any request"
        assert_only_ok_or_unavailable(
            traffic.answers, max_seconds=MAX_ANSWER_SECONDS, log=service.log()
        )
        info = server.running()
        assert_each_delivered_once(traffic, dsn_for(info.socket_dir))
        log = service.log()
        assert "stopped unexpectedly; restarting it" in log
        assert "running again after" in log
        assert_quiet_log(log, outages=1)
        print(
            f"embedded crash: restarted {back - killed_at:.1f}s after the kill, first 200 "
            f"{whole - back:.2f}s later; {len(unavailable)} answers 503 meanwhile"
        )


@pytest.fixture
def external_postgres():
    """A PostgreSQL of this test's own (the embedded binaries, started here as an
    operator's server would be): `phr serve` gets it as DATABASE_URL and so must
    not supervise it; the test kills and restarts it."""
    top = Path(tempfile.mkdtemp(prefix="phr-ext-pg-"))
    server = EmbeddedPostgres(top / "pg")
    try:
        server.start()
        yield server
    finally:
        if server.running() is None and server.started_here:
            server.restart()
        server.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_external_postgres_killed_and_restarted_pool_recovers(
    serve_data_dir: Path, external_postgres: EmbeddedPostgres
):
    dsn = external_postgres.dsn
    env = {"DATABASE_URL": dsn}
    with running_service(serve_data_dir, env=env) as service:
        world = make_world(service, env)
        before = external_postgres.running()
        with Traffic(world) as traffic:
            wait_for(lambda: len(traffic.delivered) >= 3, 30, "deliveries before the crash")
            killed_at = time.monotonic()
            os.kill(before.pid, signal.SIGKILL)
            wait_for(
                lambda: (
                    sum(1 for a in traffic.answers if a.status == 503 and a.at > killed_at) >= 5
                ),
                20,
                "503s while the external server is down",
            )
            # phr does not restart an external server: it stays down until we do.
            time.sleep(1.0)
            assert external_postgres.running() is None
            external_postgres.restart()
            back = time.monotonic()
            wait_for(
                lambda: traffic.first_ok_after(back) is not None,
                WHOLE_WITHIN_SECONDS,
                "a request answered 200 after the external server returned",
            )
            delivered_then = len(traffic.delivered)
            wait_for(lambda: len(traffic.delivered) >= delivered_then + 3, 30, "pushes after it")
        assert service.process.poll() is None
        assert_only_ok_or_unavailable(
            traffic.answers, max_seconds=MAX_ANSWER_SECONDS, log=service.log()
        )
        assert_each_delivered_once(traffic, dsn)
        log = service.log()
        assert "stopped unexpectedly" not in log  # not phr's to restart
        assert_quiet_log(log, outages=1)
        assert "available again" in log
