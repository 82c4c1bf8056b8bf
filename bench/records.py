"""Record-store benchmarks. Prints figures with baselines measured in the same run;
as part of `python -m bench`, returns them as rows of the one table.

    python bench/records.py                        # DATABASE_URL or the embedded server
    PHR_BENCH_PATIENTS=200 PHR_BENCH_SECONDS=20 python bench/records.py
    PHR_BENCH_RECORDS=100000 python bench/records.py   # also the one-big-patient checks

Audited reads under load, driven by wrk (the Debian package; installed when
missing) over PHR_BENCH_PATIENTS patients (100) with 60 records each, against
servers with 2 uvicorn workers (uvloop, httptools):
1. the client ceiling: wrk against a static endpoint, in the same run;
2. GET /v1/records/{id} (token, policy, account check, audit row committed) against
   a bare Litestar + asyncpg endpoint returning the same rows (targets: >= 0.5x
   the bare endpoint, >= 2,500 req/s, p99 <= 50 ms);
3. GET /v1/records?limit=50 against the bare page endpoint (target: <= 2x);
   in 2 and 3 the bare and the full endpoint alternate PHR_BENCH_ROUNDS times (3),
   and the figures are the rounds' medians;
4. audit events counted after the runs: one per 2xx read (wrk stops with requests
   in flight, so an exact count is made over a fixed number of requests after it);
5. sealing: time from an event's insert to the first signed checkpoint holding
   it (target p99 <= 2 s).
With PHR_BENCH_RECORDS set, one patient with that many records: /v1/export with
the server's peak memory, the first and a deep timeline page.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import sys
import tempfile
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
    WrkRun,
    machine_load,
    median,
    ms,
    p,
    peak_rss_kib,
    run_wrk,
    scratch_database,
    sequential_latencies,
    uvicorn_server,
    worker_pids,
    wrk,
)
from bench.table import Row, at_least_ratio, at_most, at_most_ratio, holds

RECORDS = int(os.environ.get("PHR_BENCH_RECORDS", "0"))
PATIENTS = int(os.environ.get("PHR_BENCH_PATIENTS", "100"))
SECONDS = int(os.environ.get("PHR_BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("PHR_BENCH_ROUNDS", "3"))
# A full page of 50, the row that says a next page exists, and some beyond.
RECORDS_EACH = 60
BATCH = 1000


async def load_records(dsn: str, patient_id: UUID, count: int = RECORDS) -> None:
    from domain.access import HospitalActor, PatientActor, authorize
    from domain.audit.events import RequestContext
    from domain.consents.consent import ConsentScope
    from domain.fhir.bundle import parse_bundle
    from domain.records.sources import RecordSource
    from infra.bootstrap import close_services, open_services
    from infra.settings import load_settings

    scratch = tempfile.mkdtemp(prefix="phr-bench-load-")
    services = await open_services(
        load_settings({"DATABASE_URL": dsn, "PHR_DATA_DIR": scratch, "PHR_WORKER": "off"}), dsn
    )
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
        for batch in range(0, count, BATCH):
            entries = []
            for i in range(batch, min(batch + BATCH, count)):
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


def workers_rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) summed over uvicorn's workers: one of them serves the export."""
    figures = [peak_rss_kib(worker) for worker in worker_pids(pid)]
    return sum(f[0] for f in figures), sum(f[1] for f in figures)


def deep_cursor(sort_at: datetime, record_id: UUID) -> str:
    from domain.records.record import TimelineCursor

    raw = msgspec.json.encode(TimelineCursor(sort_at=sort_at, id=record_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def big_patient(dsn: str, base: str, pid: int) -> list[Row]:
    rows: list[Row] = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        email, password = (
            f"bench-{uuid.uuid4().hex[:8]}@example.org",
            "a long bench passphrase 42",
        )
        assert (
            await client.post("/v1/auth/register", json={"email": email, "password": password})
        ).status_code == 202
        tokens = (
            await client.post("/v1/auth/login", json={"email": email, "password": password})
        ).json()
        me = (
            await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        ).json()
        patient_id = UUID(me["id"])
        started = time.perf_counter()
        await load_records(dsn, patient_id, RECORDS)  # the global as set by run(), not at import
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
        rss_before, _ = workers_rss_kib(pid)
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
        rss_after, peak = workers_rss_kib(pid)
        print(
            f"\n/v1/export: {entries:,} entries, {size / 1e6:.1f} MB in {elapsed:.1f} s "
            f"({entries / elapsed:,.0f} records/s)"
        )
        print(
            f"  server RSS before {rss_before / 1024:.0f} MiB, after {rss_after / 1024:.0f} MiB, "
            f"peak {peak / 1024:.0f} MiB (growth {(peak - rss_before) / 1024:.0f} MiB for {size / 2**20:.0f} MiB streamed)"
        )
        # Streamed, not built in memory: the server grows by far less than it sends.
        rows.append(
            at_most(
                f"/v1/export of {entries:,} records: server memory growth",
                (peak - rss_before) / 1024,
                max(32.0, round(size / 2**20 / 4, 1)),
                unit="MiB",
                note=f"{size / 2**20:.0f} MiB streamed at {entries / elapsed:,.0f} records/s",
            )
        )

        h = await headers()
        first = (await client.get("/v1/records?limit=1", headers=h)).json()["items"][0]
        record_id = first["id"]
        with uvicorn_server("bench.bare_record_app:create_app", dsn) as (bare_base, _):
            async with httpx.AsyncClient(base_url=bare_base, timeout=60) as bare:
                # wrk, not a Python client: on 2 cores the client would saturate first.
                full_url = f"{base}/v1/records/{record_id}"
                bare_url = f"{bare_base}/bare/{patient_id}/{record_id}"
                await asyncio.to_thread(wrk, full_url, headers=h, seconds=1)
                await asyncio.to_thread(wrk, bare_url, seconds=1)
                # Alternating, as in the audited-read comparison: the machine drifts.
                rounds = []
                for _ in range(ROUNDS):
                    full = await asyncio.to_thread(wrk, full_url, headers=h, seconds=SECONDS)
                    bare_run = await asyncio.to_thread(wrk, bare_url, seconds=SECONDS)
                    rounds.append((full, bare_run))
                print(f"\nGET /v1/records/{{id}}, wrk, 16 connections, {SECONDS:g} s each:")
                for full, bare_run in rounds:
                    print(
                        f"  full stack {full.rps:,.0f} req/s (p50 {full.p50_ms:.2f} ms, errors "
                        f"{full.errors}), bare {bare_run.rps:,.0f} req/s (p50 "
                        f"{bare_run.p50_ms:.2f} ms): {full.rps / bare_run.rps:.2f}x"
                    )
                ratio = median([f.rps / b.rps for f, b in rounds])
                errors = sum(f.errors for f, _ in rounds)
                print(f"  the median of the rounds {ratio:.2f}x (target >= 0.6x)")
                rows.append(
                    holds(
                        "GET /v1/records/{id} throughput vs bare Litestar+asyncpg (wrk), "
                        f"median of {ROUNDS} alternating rounds",
                        ratio,
                        ratio >= 0.6 and not errors,
                        ">= 0.6x",
                        unit="x",
                        note="; ".join(
                            [f"{f.rps:,.0f} vs {b.rps:,.0f} req/s" for f, b in rounds]
                            + ([f"{errors} errors"] if errors else [])
                        ),
                    )
                )

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
        rows.append(
            at_most_ratio(
                "GET /v1/records?limit=50 p50 vs one asyncpg fetch + encode",
                median(page_lat) * 1000,
                median(fetch_lat) * 1000,
                3,
                unit="ms",
            )
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
        rows.append(
            at_most(
                f"timeline first page p50, {RECORDS:,} records",
                median(first_page) * 1000,
                10,
                unit="ms",
            )
        )
        rows.append(
            at_most(
                f"timeline page at record {int(RECORDS * 0.9):,} p50 (keyset)",
                median(deep_page) * 1000,
                10,
                unit="ms",
            )
        )
    return rows


async def make_patients(client: httpx.AsyncClient, count: int) -> list[tuple[UUID, str]]:
    """(patient id, access token) for `count` patients registered through the API."""
    gate = asyncio.Semaphore(4)

    async def one(n: int) -> tuple[UUID, str]:
        async with gate:
            account = {"email": f"bench-{n}-{uuid.uuid4().hex[:6]}@example.org",
                       "password": "a long bench passphrase 42"}  # fmt: skip
            assert (await client.post("/v1/auth/register", json=account)).status_code == 202
            tokens = (await client.post("/v1/auth/login", json=account)).json()
            auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
            me = (await client.get("/v1/me", headers=auth)).json()
            return UUID(me["id"]), tokens["accessToken"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def sql(dsn: str, query: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def middle(runs: list[WrkRun]) -> WrkRun:
    """The rounds' medians, each figure on its own; the counts are the rounds' sums."""
    return WrkRun(
        requests=sum(r.requests for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        rps=median([r.rps for r in runs]),
        p50=median([r.p50 for r in runs]),
        p99=median([r.p99 for r in runs]),
    )


def line(name: str, result: WrkRun) -> str:
    return (
        f"  {name:<34} {result.rps:>8,.0f} req/s  p50 {ms(result.p50):>9}  p99 {ms(result.p99):>9}"
        f"  ({result.requests:,} requests, {result.non_2xx} not 2xx)"
    )


async def exact_audit_check(base: str, dsn: str, patients, records) -> Row:
    """A fixed number of reads, every response awaited: one success event per 200,
    one refusal per 404 (every tenth asks for an id that is not there)."""
    before = await sql(dsn, _READ_COUNTS)

    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(n: int) -> int:
            (_, token), record_id = patients[n % len(patients)], records[n % len(records)]
            target = uuid.uuid4() if n % 10 == 0 else record_id
            async with gate:
                response = await client.get(
                    f"/v1/records/{target}", headers={"Authorization": f"Bearer {token}"}
                )
            return response.status_code

        statuses = await asyncio.gather(*(one(n) for n in range(2000)))
    ok, missing = statuses.count(200), statuses.count(404)
    after = await sql(dsn, _READ_COUNTS)
    got_ok = after[0]["success"] - before[0]["success"]
    got_denied = after[0]["denied"] - before[0]["denied"]
    verdict = "exact" if (got_ok, got_denied) == (ok, missing) else "MISMATCH"
    print(
        f"  fixed run of 2,000 reads: {ok} answered 200 -> {got_ok} success events; "
        f"{missing} answered 404 -> {got_denied} refusal events ({verdict})"
    )
    return holds(
        "audit events for 2,000 awaited reads: one per 200 and per 404",
        got_ok + got_denied,
        (got_ok, got_denied) == (ok, missing),
        "exactly one each",
        note=f"{ok} x 200 -> {got_ok} success, {missing} x 404 -> {got_denied} denied",
    )


_READ_COUNTS = """
    SELECT count(*) FILTER (WHERE outcome = 'success') AS success,
           count(*) FILTER (WHERE outcome = 'denied') AS denied,
           coalesce(max(id), 0) AS last_id
    FROM audit_event WHERE action = 'record.read'
"""

_SEALING = """
    SELECT count(*) AS events,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.signed_at - e.recorded_at)) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM c.signed_at - e.recorded_at)) AS p99,
           max(extract(epoch FROM c.signed_at - e.recorded_at)) AS worst
    FROM audit_event e
    JOIN audit_leaf l ON l.event_id = e.id
    CROSS JOIN LATERAL (
        SELECT signed_at FROM audit_checkpoint WHERE tree_size > l.leaf_index
        ORDER BY tree_size LIMIT 1
    ) AS c
    WHERE e.id > $1 AND e.id <= $2
"""


async def audited_reads(dsn: str, base: str) -> list[Row]:
    print(f"machine: {machine_load()} before the run")
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        started = time.perf_counter()
        patients = await make_patients(client, PATIENTS)
    for patient_id, _ in patients:
        await load_records(dsn, patient_id, RECORDS_EACH)
    await sql(dsn, "ANALYZE")
    print(
        f"{PATIENTS} patients with {RECORDS_EACH} records each, ready in "
        f"{time.perf_counter() - started:.0f} s"
    )
    rows = await sql(
        dsn,
        "SELECT DISTINCT ON (patient_id) patient_id, id FROM record "
        "WHERE NOT is_supporting ORDER BY patient_id, id",
    )
    first_record = {row["patient_id"]: row["id"] for row in rows}
    records = [first_record[pid] for pid, _ in patients]
    auth = [{"Authorization": f"Bearer {token}"} for _, token in patients]

    bare_reads = [
        (f"/bare/{pid}/{rid}", {}) for (pid, _), rid in zip(patients, records, strict=True)
    ]
    bare_pages = [(f"/bare-page/{pid}", {}) for pid, _ in patients]
    reads = [(f"/v1/records/{rid}", h) for rid, h in zip(records, auth, strict=True)]
    pages = [("/v1/records?limit=50", h) for h in auth]
    with uvicorn_server("bench.bare_record_app:create_app", dsn, workers=2) as (bare, _):
        run_wrk(bare, [("/healthz", {})], seconds=2)  # warm up
        ceiling = run_wrk(bare, [("/healthz", {})], seconds=SECONDS)
        run_wrk(bare, bare_reads, seconds=2)
        run_wrk(base, reads, seconds=2)  # warm up: tokens verified once, statements prepared
        await asyncio.sleep(1)  # the warm-up's requests left in flight finish
        # Each comparison alternates the bare and the full endpoint, ROUNDS times:
        # this machine's speed drifts by tens of per cent within a minute, and a
        # ratio of two runs taken a minute apart measured the drift.
        before = (await sql(dsn, _READ_COUNTS))[0]
        record_rounds = [
            (run_wrk(bare, bare_reads, seconds=SECONDS), run_wrk(base, reads, seconds=SECONDS))
            for _ in range(ROUNDS)
        ]
        await asyncio.sleep(1)  # requests wrk left in flight finish
        after = (await sql(dsn, _READ_COUNTS))[0]
        page_rounds = [
            (run_wrk(bare, bare_pages, seconds=SECONDS), run_wrk(base, pages, seconds=SECONDS))
            for _ in range(ROUNDS)
        ]

    print(
        f"\nwrk, 2 threads, 32 connections, {SECONDS} s each, bare and full alternating "
        f"{ROUNDS} times; servers with 2 workers:"
    )
    print(line("client ceiling (static endpoint)", ceiling))
    for bare_run, full_run in record_rounds:
        print(line("bare GET record", bare_run))
        print(line("full GET /v1/records/{id}", full_run))
    for bare_run, full_run in page_rounds:
        print(line("bare page of 50", bare_run))
        print(line("full GET /v1/records?limit=50", full_run))
    bare_record = middle([b for b, _ in record_rounds])
    full_record = middle([f for _, f in record_rounds])
    record_ratio = median([f.rps / b.rps for b, f in record_rounds])
    page_ratio = median([f.p50 / b.p50 for b, f in page_rounds])
    print(
        f"  audited read vs bare, the median of the rounds: {record_ratio:.2f}x (target "
        f">= 0.5x, stretch 0.7x); {full_record.rps:,.0f} req/s (target >= 2,500); p99 "
        f"{ms(full_record.p99)} (target <= 50 ms)"
    )
    print(
        f"  timeline page p50 vs bare page, the median of the rounds: {page_ratio:.2f}x "
        f"(target <= 2x); by throughput "
        + ", ".join(f"{b.rps / f.rps:.2f}x" for b, f in page_rounds)
    )
    print(f"  bare record endpoint at {bare_record.rps / ceiling.rps:.0%} of the client ceiling")
    if bare_record.rps < 2500 or bare_record.p99 > 0.050:
        # The absolute targets came from a machine whose bare endpoint did about
        # 5,200 req/s; where the bare endpoint cannot meet them, say so beside the FAIL.
        print(
            f"  note: the bare endpoint itself does {bare_record.rps:,.0f} req/s, p99 "
            f"{ms(bare_record.p99)} on this machine: the absolute targets (2,500 req/s, "
            "p99 50 ms) are beyond what the baseline reaches here; the ratios are the "
            "figures to judge"
        )

    print("\naudit events:")
    answered = full_record.requests - full_record.non_2xx
    in_flight = 32 * ROUNDS
    written = after["success"] - before["success"]
    print(
        f"  wrk runs: {answered:,} 2xx responses counted by wrk, {written:,} success events "
        f"written ({written - answered:+} = requests in flight when wrk stopped, "
        f"at most its 32 connections in each of {ROUNDS} runs)"
    )
    exact = await exact_audit_check(base, dsn, patients, records)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        unsealed = await sql(
            dsn,
            "SELECT count(*) AS n FROM audit_event e WHERE NOT EXISTS "
            "(SELECT 1 FROM audit_leaf l WHERE l.event_id = e.id)",
        )
        if unsealed[0]["n"] == 0:
            break
        await asyncio.sleep(0.2)
    row = (await sql(dsn, _SEALING, before["last_id"], after["last_id"]))[0]
    # No sealed events: nan, which fails the target instead of passing as 0 s.
    sealing = {k: math.nan if v is None else float(v) for k, v in row.items()}
    sealing["events"] = int(row["events"])
    print(
        f"\nsealing during the full-stack run ({sealing['events']:,} events, sequencer every "
        f"250 ms): p50 {sealing['p50']:.3f} s, p99 {sealing['p99']:.3f} s, worst "
        f"{sealing['worst']:.3f} s (target p99 <= 2 s)"
    )
    print(f"machine: {machine_load()} after the run")
    errors = f"{full_record.non_2xx} not 2xx" if full_record.non_2xx else ""
    rows = [
        at_least_ratio(
            "bare GET record vs client ceiling (static endpoint, wrk)",
            bare_record.rps,
            ceiling.rps,
            0.0,
            unit="req/s",
            note="context: how near the bare endpoint is to what wrk can drive here",
        ),
        holds(
            f"audited GET /v1/records/{{id}} vs bare Litestar+asyncpg (wrk, 2 workers), "
            f"median of {ROUNDS} alternating rounds",
            record_ratio,
            record_ratio >= 0.5 and not full_record.non_2xx,
            ">= 0.5x",
            unit="x",
            note="; ".join(
                [f"{f.rps:,.0f} vs {b.rps:,.0f} req/s" for b, f in record_rounds]
                + ([errors] if errors else [])
            ),
        ),
        holds(
            "audited GET /v1/records/{id} throughput",
            full_record.rps,
            full_record.rps >= 2500,
            ">= 2,500 req/s",
            unit="req/s",
            note=f"the bare endpoint does {bare_record.rps:,.0f} req/s on this machine",
        ),
        at_most(
            "audited GET /v1/records/{id} p99",
            full_record.p99 * 1000,
            50,
            unit="ms",
            baseline=bare_record.p99 * 1000,
        ),
        holds(
            f"GET /v1/records?limit=50 p50 vs bare page of 50 (wrk), median of {ROUNDS} "
            "alternating rounds",
            page_ratio,
            page_ratio <= 2,
            "<= 2x",
            unit="x",
            note="; ".join(
                f"{ms(f.p50)} vs {ms(b.p50)} ({f.p50 / b.p50:.2f}x)" for b, f in page_rounds
            ),
        ),
        holds(
            "audit success events vs 2xx during the wrk runs",
            written - answered,
            0 <= written - answered <= in_flight,
            f"0..{in_flight} more (requests in flight when wrk stopped)",
            note=f"{answered:,} 2xx, {written:,} events",
        ),
        exact,
        at_most(
            f"sealing p99, event insert to signed checkpoint ({sealing['events']:,} events)",
            sealing["p99"],
            2,
            unit="s",
            note=f"p50 {sealing['p50']:.3f} s, worst {sealing['worst']:.3f} s",
        ),
    ]
    return rows


def run(quick: bool, *, standalone: bool = False) -> list[Row]:
    global PATIENTS, SECONDS, RECORDS, ROUNDS
    if quick:
        PATIENTS = min(PATIENTS, 20)
        SECONDS = min(SECONDS, 3)
        ROUNDS = 1
        RECORDS = min(RECORDS or 10_000, 10_000)
    elif not RECORDS and not standalone:
        # The one table covers the one-big-patient checks too; run alone, only
        # when PHR_BENCH_RECORDS asks for them.
        RECORDS = 100_000
    with (
        scratch_database() as dsn,
        uvicorn_server("api.app:create_app_from_env", dsn, workers=2) as (base, pid),
    ):
        rows = asyncio.run(audited_reads(dsn, base))
        if RECORDS:
            rows += asyncio.run(big_patient(dsn, base, pid))
    return rows


if __name__ == "__main__":
    from bench.table import render

    print(render(run(quick=False, standalone=True)))
