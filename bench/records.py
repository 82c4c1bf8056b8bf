"""Record-store benchmarks. Prints figures with baselines measured in the same run.

    python bench/records.py            # 100,000 records (DATABASE_URL or embedded)
    PHR_BENCH_RECORDS=20000 python bench/records.py

1. GET /v1/records/{id} through the full stack (token, policy, audit) against a
   bare Litestar + asyncpg endpoint returning the same row: throughput ratio
   (target >= 0.6x).
2. GET /v1/records?limit=50 p50 against one asyncpg fetch of the same 50 rows plus
   msgspec encoding (target <= 3x); the bare HTTP endpoint is printed too.
3. First page and a deep cursor page for a patient with 100,000 records (p50 <= 10 ms).
4. /v1/export of every record, with the server's peak memory.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import (
    median,
    ms,
    p,
    peak_rss_kib,
    scratch_database,
    sequential_latencies,
    throughput,
    uvicorn_server,
)

RECORDS = int(os.environ.get("PHR_BENCH_RECORDS", "100000"))
BATCH = 1000


async def load_records(dsn: str, patient_id: UUID) -> None:
    from domain.access import HospitalActor, PatientActor, authorize
    from domain.audit.events import RequestContext
    from domain.consents.consent import ConsentScope
    from domain.fhir.bundle import parse_bundle
    from domain.records.sources import RecordSource
    from infra.bootstrap import close_services, open_services
    from infra.settings import load_settings

    services = await open_services(load_settings({"DATABASE_URL": dsn}), dsn)
    try:
        hospital = uuid.uuid4()
        now = datetime.now(UTC)
        permit = authorize(
            PatientActor(patient_id),
            "link.created",
            patient_id,
            now=now,
            context=RequestContext(request_id="bench-load"),
        )
        consent = await services.consents.create(
            permit,
            kind="data-source",
            grantee_type="hospital",
            grantee_id=str(hospital),
            scope=ConsentScope(),
            start=now - timedelta(minutes=1),
            end=None,
        )
        start = datetime(2000, 1, 1, tzinfo=UTC)
        for batch in range(0, RECORDS, BATCH):
            entries = []
            for i in range(batch, min(batch + BATCH, RECORDS)):
                when = (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
                entries.append(
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "id": f"obs-{i}",
                            "status": "final",
                            "code": {
                                "coding": [
                                    {
                                        "system": "http://loinc.org",
                                        "code": "8867-4",
                                        "display": "Heart rate",
                                    }
                                ]
                            },
                            "effectiveDateTime": when,
                            "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
                        }
                    }
                )
            await services.patient_records.ingest_delivery(
                HospitalActor(hospital),
                patient_id,
                RecordSource("hospital", hospital),
                parse_bundle({"resourceType": "Bundle", "type": "collection", "entry": entries}),
                context=RequestContext(request_id="bench-load"),
                consent=consent,
            )
    finally:
        await close_services(services)


async def in_process_page(dsn: str, patient_id: UUID, count: int = 200) -> list[float]:
    from infra.pg.database import _init_connection

    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    sql = (
        "SELECT id, resource_type, category, display, value, unit, status, effective_at, sort_at, "
        "source_kind, hospital_id FROM record WHERE patient_id = $1 AND NOT is_supporting "
        "ORDER BY sort_at DESC, id DESC LIMIT 51"
    )
    out = []
    for _ in range(count):
        started = time.perf_counter()
        rows = await conn.fetch(sql, patient_id)
        msgspec.json.encode({"items": [dict(r) for r in rows[:50]]})
        out.append(time.perf_counter() - started)
    await conn.close()
    return out


def deep_cursor(sort_at: datetime, record_id: UUID) -> str:
    from domain.records.record import TimelineCursor

    raw = msgspec.json.encode(TimelineCursor(sort_at=sort_at, id=record_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def main(dsn: str, base: str, pid: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        email, password = (
            f"bench-{uuid.uuid4().hex[:8]}@example.org",
            "a long bench passphrase 42",
        )
        assert (
            await client.post("/v1/auth/register", json={"email": email, "password": password})
        ).status_code == 201
        tokens = (
            await client.post("/v1/auth/login", json={"email": email, "password": password})
        ).json()
        me = (
            await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        ).json()
        patient_id = UUID(me["id"])
        started = time.perf_counter()
        await load_records(dsn, patient_id)
        print(f"loaded {RECORDS:,} records in {time.perf_counter() - started:.1f} s")
        # Production tables are analysed by autovacuum; do it now rather than wait.
        analyse = await asyncpg.connect(dsn)
        await analyse.execute("ANALYZE record")
        await analyse.close()

        async def headers() -> dict[str, str]:
            # Access tokens live 15 minutes; log in afresh for each phase.
            fresh = (
                await client.post("/v1/auth/login", json={"email": email, "password": password})
            ).json()
            return {"Authorization": f"Bearer {fresh['accessToken']}"}

        # 4 first: the server's peak memory then reflects the export, not the load tests.
        rss_before, _ = peak_rss_kib(pid)
        started = time.perf_counter()
        size = entries = 0
        async with client.stream("GET", "/v1/export", headers=await headers()) as response:
            assert response.status_code == 200
            tail = b""
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                # Count across chunk boundaries: keep the last few bytes.
                window = tail + chunk
                entries += window.count(b'"fullUrl"') - tail.count(b'"fullUrl"')
                tail = window[-8:]
        elapsed = time.perf_counter() - started
        rss_after, peak = peak_rss_kib(pid)
        print(
            f"\n/v1/export: {entries:,} entries, {size / 1e6:.1f} MB in {elapsed:.1f} s "
            f"({entries / elapsed:,.0f} records/s)"
        )
        print(
            f"  server RSS before {rss_before / 1024:.0f} MiB, after {rss_after / 1024:.0f} MiB, "
            f"peak {peak / 1024:.0f} MiB (growth {(peak - rss_before) / 1024:.0f} MiB for {size / 2**20:.0f} MiB streamed)"
        )

        h = await headers()
        first = (await client.get("/v1/records?limit=1", headers=h)).json()["items"][0]
        record_id = first["id"]
        with uvicorn_server("bench.bare_record_app:create_app", dsn) as (bare_base, _):
            async with httpx.AsyncClient(base_url=bare_base, timeout=60) as bare:
                await throughput(client, f"/v1/records/{record_id}", headers=h, seconds=1)
                await throughput(bare, f"/bare/{patient_id}/{record_id}", seconds=1)
                full_rps, full_lat = await throughput(client, f"/v1/records/{record_id}", headers=h)
                bare_rps, bare_lat = await throughput(bare, f"/bare/{patient_id}/{record_id}")
                print("\nGET /v1/records/{id}, 16 concurrent clients, 4 s each:")
                print(
                    f"  full stack {full_rps:,.0f} req/s (p50 {ms(p(full_lat, 0.5))}), "
                    f"bare {bare_rps:,.0f} req/s (p50 {ms(p(bare_lat, 0.5))})"
                )
                print(f"  ratio {full_rps / bare_rps:.2f}x (target >= 0.6x)")

                h = await headers()
                page_lat = await sequential_latencies(client, "/v1/records?limit=50", headers=h)
                bare_page = await sequential_latencies(bare, f"/bare-page/{patient_id}")
        fetch_lat = await in_process_page(dsn, patient_id)
        print("\nGET /v1/records?limit=50, sequential, 200 requests:")
        print(
            f"  full stack p50 {ms(median(page_lat))}; one asyncpg fetch + msgspec encode p50 "
            f"{ms(median(fetch_lat))}; bare HTTP endpoint p50 {ms(median(bare_page))}"
        )
        print(
            f"  ratio vs fetch+encode {median(page_lat) / median(fetch_lat):.2f}x (target <= 3x); "
            f"vs bare HTTP {median(page_lat) / median(bare_page):.2f}x"
        )

        conn = await asyncpg.connect(dsn)
        deep = await conn.fetchrow(
            "SELECT sort_at, id FROM record WHERE patient_id = $1 AND NOT is_supporting "
            "ORDER BY sort_at DESC, id DESC OFFSET $2 LIMIT 1",
            patient_id,
            int(RECORDS * 0.9),
        )
        await conn.close()
        cursor = deep_cursor(deep["sort_at"], deep["id"])
        h = await headers()
        first_page = await sequential_latencies(client, "/v1/records?limit=50", headers=h)
        deep_page = await sequential_latencies(
            client, f"/v1/records?limit=50&cursor={cursor}", headers=h
        )
        print(f"\nTimeline of {RECORDS:,} records, 50 per page, 200 requests each:")
        print(f"  first page p50 {ms(median(first_page))}, p99 {ms(p(first_page, 0.99))}")
        print(
            f"  page at record {int(RECORDS * 0.9):,} p50 {ms(median(deep_page))}, p99 {ms(p(deep_page, 0.99))} "
            "(target p50 <= 10 ms each)"
        )


if __name__ == "__main__":
    with (
        scratch_database() as dsn,
        uvicorn_server("api.app:create_app_from_env", dsn) as (base, pid),
    ):
        asyncio.run(main(dsn, base, pid))
