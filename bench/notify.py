"""Notification benchmarks. Prints figures with baselines measured in the same run.

    python bench/notify.py                         # DATABASE_URL or the embedded server
    PHR_BENCH_FANOUT=2000 python bench/notify.py    # fewer patients

1. Fan-out: one notification to 10,000 patients (each with a Web Push
   registration) into the outbox through `Notifier.emit`, the path the refill
   scan and a share take: preferences read, then the notification and delivery
   rows written by one INSERT ... SELECT statement (target <= 1 s), against a
   raw asyncpg COPY of the same rows into scratch tables shaped like
   `notification` and `notification_delivery` (indexes, no foreign keys).
2. Delivery: those pushes sent by the dispatcher (VAPID-signed, aes128gcm
   encrypted, over HTTP) to a local Web Push receiver in a process of its own,
   in deliveries per second.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import free_port, median, scratch_database
from bench.table import Row, at_most, holds

FANOUT = int(os.environ.get("PHR_BENCH_FANOUT", "10000"))
DELIVERIES = int(os.environ.get("PHR_BENCH_DELIVERIES", "3000"))
RUNS = 3

# A push service that accepts everything: a separate process, so it does not
# share the sender's interpreter.
SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


async def seed(dsn: str, count: int, endpoint: str) -> list[uuid.UUID]:
    """Patients and one Web Push registration each, written directly (the
    benchmark measures the fan-out, not sign-up)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    import base64

    p256dh = base64.urlsafe_b64encode(public).rstrip(b"=").decode()
    auth = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "patient",
            columns=["id", "email", "password_hash", "created_at", "password_changed_at"],
            records=[(i, f"{i.hex}@bench.example", "x", now, now) for i in ids],
        )
        await conn.copy_records_to_table(
            "push_device",
            columns=["id", "patient_id", "kind", "address", "p256dh", "auth", "created_at"],
            records=[
                (uuid.uuid4(), i, "webpush", f"{endpoint}/push/{i.hex}", p256dh, auth, now)
                for i in ids
            ],
        )
        await conn.execute("ANALYZE patient; ANALYZE push_device")
    finally:
        await conn.close()
    return ids


async def owner(dsn: str, sql: str) -> None:
    """Clean-up between runs, as the owner (the application role may not delete)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def copy_baseline(dsn: str, ids: list[uuid.UUID]) -> float:
    """The same rows by raw COPY into scratch tables shaped like the real ones."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE bench_notification (LIKE notification INCLUDING ALL);"
            "CREATE TABLE bench_delivery (LIKE notification_delivery INCLUDING ALL)"
        )
        devices = dict(await conn.fetch("SELECT patient_id, id FROM push_device"))
        now = datetime.now(UTC)
        notifications = [
            (uuid.uuid4(), i, "share-opened", "bench:copy", '{"label": "x"}', now, now) for i in ids
        ]
        deliveries = [
            (uuid.uuid4(), n[0], n[1], devices[n[1]], "webpush", now, now) for n in notifications
        ]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "bench_notification",
                columns=[
                    "id",
                    "patient_id",
                    "kind",
                    "dedupe_key",
                    "params",
                    "created_at",
                    "visible_at",
                ],
                records=[(*n[:4], n[4], *n[5:]) for n in notifications],
            )
            await conn.copy_records_to_table(
                "bench_delivery",
                columns=[
                    "id",
                    "notification_id",
                    "patient_id",
                    "device_id",
                    "kind",
                    "due_at",
                    "created_at",
                ],
                records=deliveries,
            )
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_notification; DROP TABLE bench_delivery")
        return elapsed
    finally:
        await conn.close()


async def fan_out(services, ids: list[uuid.UUID], key: str) -> float:
    from domain.notifications.model import NewNotification

    item = NewNotification(kind="share-opened", dedupe_key=key, params={"label": "bench"})
    started = time.perf_counter()
    async with services.unit_of_work() as uow:
        added = await services.notifier.emit([(i, item) for i in ids])
        await uow.commit()
    elapsed = time.perf_counter() - started
    assert len(added) == len(ids), (len(added), len(ids))
    return elapsed


def run(quick: bool) -> list[Row]:
    """The `python -m bench` contract (bench/__main__.py)."""
    global FANOUT, DELIVERIES
    if quick:
        FANOUT, DELIVERIES = min(FANOUT, 2000), min(DELIVERIES, 500)
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    os.environ["PHR_WEBPUSH_ENDPOINT_ALLOW"] = "http://127.0.0.1:*"
    try:
        with scratch_database() as dsn:
            return asyncio.run(measure(dsn, port))
    finally:
        sink.terminate()
        sink.wait(5)


def main() -> None:
    from bench.table import render

    print(render(run(quick=False)))


async def measure(dsn: str, port: int) -> list[Row]:
    from infra.bootstrap import close_services, open_services
    from infra.settings import load_settings

    data_dir = tempfile.mkdtemp(prefix="phr-bench-notify-")
    if True:
        if True:
            settings = load_settings(
                {"DATABASE_URL": dsn, "PHR_DATA_DIR": data_dir, "PHR_WORKER": "off"}
            )
            ids = await seed(dsn, FANOUT, f"http://127.0.0.1:{port}")
            services = await open_services(settings, dsn)
            try:
                copies, emits = [], []
                for run in range(RUNS):
                    copies.append(await copy_baseline(dsn, ids))
                    emits.append(await fan_out(services, ids, f"bench:{run}"))
                    if run < RUNS - 1:
                        await owner(dsn, "DELETE FROM notification_delivery")
                copy_s, emit_s = median(copies), median(emits)
                print(f"fan-out to {FANOUT:,} patients (notification + push delivery each)")
                print(f"  Notifier.emit into the outbox   {emit_s * 1000:8.0f} ms  (target <= 1000 ms)")  # fmt: skip
                print(f"  raw COPY of the same rows       {copy_s * 1000:8.0f} ms  ({emit_s / copy_s:.1f}x)")  # fmt: skip

                # Deliveries: keep DELIVERIES of the pending pushes.
                await owner(
                    dsn,
                    "DELETE FROM notification_delivery WHERE id NOT IN "
                    f"(SELECT id FROM notification_delivery ORDER BY id LIMIT {DELIVERIES})",
                )
                dispatcher = services.push_dispatcher
                await dispatcher.run_once(limit=1)  # warm: VAPID key, connections
                started = time.perf_counter()
                sent = 1
                deadline = started + 300
                while time.perf_counter() < deadline and (n := await dispatcher.run_once(limit=200)):  # fmt: skip
                    sent += n
                elapsed = time.perf_counter() - started
                async with services.database.transaction() as conn:
                    delivered = await conn.fetchval(
                        "SELECT count(*) FROM notification_delivery WHERE status = 'delivered'"
                    )
                print(f"Web Push delivery to a local receiver ({delivered:,} delivered)")
                print(f"  {sent / elapsed:8.0f} deliveries/s  (VAPID JWT + aes128gcm per push, 16 in flight)")  # fmt: skip
                return [
                    at_most(
                        f"fan-out of one notification to {FANOUT:,} patients into the outbox",
                        emit_s * 1000,
                        1000,
                        unit="ms",
                        baseline=copy_s * 1000,
                        note="baseline: raw COPY of the same rows",
                    ),
                    holds(
                        "Web Push deliveries/s to a local receiver",
                        sent / elapsed,
                        delivered > 0,
                        "measured",
                        unit="/s",
                        note=f"{delivered:,} delivered; VAPID + aes128gcm each",
                    ),
                ]
            finally:
                await close_services(services)


if __name__ == "__main__":
    main()
