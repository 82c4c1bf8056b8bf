"""Hospital ingest benchmarks. Prints figures with baselines measured in the same run.

    python bench/ingest.py                      # DATABASE_URL or the embedded server
    PHR_BENCH_BURST=2000 python bench/ingest.py # a smaller burst

1. A 1,000-entry FHIR bundle through the full webhook path (HTTP on loopback,
   Standard Webhooks signature, FHIR validation, ingest, audit, stored reply) in
   rows/s, against a raw asyncpg COPY (`copy_records_to_table`) of the same rows
   into a scratch table shaped like `record` (target >= 0.25x).
2. A burst of single-result deliveries (10,000 by default) from concurrent
   clients against a per-hospital rate limit: every delivery is accepted or told
   to retry (429 + Retry-After); clients retry (same webhook-id, re-signed) and at
   the end the database holds each result exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import median, scratch_database, uvicorn_server

BUNDLE_ENTRIES = 1000
BUNDLE_RUNS = 5
BURST = int(os.environ.get("PHR_BENCH_BURST", "10000"))
BURST_CLIENTS = int(os.environ.get("PHR_BENCH_CLIENTS", "32"))
BURST_PATIENTS = 16
# The limit the burst runs into: low enough that 429s happen, high enough to finish soon.
RATE_LIMIT = int(os.environ.get("PHR_BENCH_RATE_LIMIT", "200"))
RATE_WINDOW = 1
MAX_ATTEMPTS = 200  # per delivery; with Retry-After of ~1 s the burst is bounded in time


def observation(source_id: str, value: float, when: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": source_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}],
            "text": "Glucose",
        },
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
    }


def bundle_of(prefix: str, count: int) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": observation(
                    f"{prefix}-{i}",
                    70 + i % 50,
                    # A distinct instant per entry: no cache flatters the figure.
                    f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z",
                ),
            }
            for i in range(count)
        ],
    }


class Sender:
    def __init__(self, base: str, hospital_id: str, secret: str):
        self.url = f"{base}/v1/hospitals/{hospital_id}/webhook"
        self.webhook = Webhook(secret)

    def headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        now = datetime.now(UTC)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.webhook.sign(msg_id, now, body.decode()),
            "content-type": "application/json",
        }

    async def send(
        self, client: httpx.AsyncClient, event: dict, msg_id: str | None = None
    ) -> httpx.Response:
        body = json.dumps(event).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        return await client.post(
            self.url, content=body, headers=self.headers(msg_id, body), timeout=60
        )


async def register(client: httpx.AsyncClient, base: str) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    password = f"bench horse {uuid.uuid4().hex[:8]} battery"
    assert (
        await client.post(f"{base}/v1/auth/register", json={"email": email, "password": password})
    ).status_code == 201
    tokens = (
        await client.post(f"{base}/v1/auth/login", json={"email": email, "password": password})
    ).json()
    me = (
        await client.get(
            f"{base}/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
        )
    ).json()
    return {"id": me["id"], "token": tokens["accessToken"]}


async def link(
    client: httpx.AsyncClient, base: str, sender: Sender, hospital_id: str, who: dict, ref: str
) -> None:
    made = await client.post(
        f"{base}/v1/links",
        json={"hospitalId": hospital_id},
        headers={"Authorization": f"Bearer {who['token']}"},
    )
    assert made.status_code == 201, made.text
    done = await sender.send(
        client, {"type": "patient.linked", "data": {"code": made.json()["code"], "patientRef": ref}}
    )
    assert done.status_code == 200, done.text


async def copy_baseline(dsn: str, bundle: dict, patient_id: str, hospital_id: str) -> float:
    """Raw COPY of the same 1,000 rows (as the record store would write them) into
    a scratch table shaped like `record`, with its indexes."""
    from domain.fhir.bundle import parse_bundle
    from domain.records.record import content_hash

    entries = parse_bundle(bundle)
    now = datetime.now(UTC)
    rows = []
    for entry in entries:
        f = entry.fields
        rows.append(
            (
                uuid.uuid4(),
                uuid.UUID(patient_id),
                "hospital",
                hospital_id,
                uuid.UUID(hospital_id),
                f.resource_type,
                f.source_id,
                entry.is_supporting,
                f.category,
                f.code_system,
                f.code,
                f.display,
                f.effective_at,
                f.status,
                f.value,
                f.unit,
                f.effective_at or now,
                1,
                f.version_id,
                f.last_updated,
                content_hash(entry.resource),
                json.dumps(entry.resource),
                now,
                now,
            )
        )
    columns = [
        "id",
        "patient_id",
        "source_kind",
        "source_key",
        "hospital_id",
        "resource_type",
        "source_resource_id",
        "is_supporting",
        "category",
        "code_system",
        "code",
        "display",
        "effective_at",
        "status",
        "value",
        "unit",
        "sort_at",
        "version",
        "source_version",
        "source_updated_at",
        "content_hash",
        "resource",
        "received_at",
        "updated_at",
    ]
    conn = await asyncpg.connect(dsn)
    try:
        timings = []
        for run in range(BUNDLE_RUNS):
            table = f"bench_copy_{run}"
            await conn.execute(f"CREATE TABLE {table} (LIKE record INCLUDING ALL)")
            started = time.perf_counter()
            await conn.copy_records_to_table(table, records=rows, columns=columns)
            timings.append(time.perf_counter() - started)
            await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    return len(rows) / median(timings)


async def burst(base: str, sender: Sender, refs: list[str]) -> dict:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(BURST):
        queue.put_nowait(i)
    statuses: Counter[int] = Counter()
    retries = 0
    lost: list[int] = []

    async def client_loop() -> None:
        nonlocal retries
        async with httpx.AsyncClient(timeout=60) as client:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                event = {
                    "type": "records.push",
                    "data": {
                        "patientRef": refs[i % len(refs)],
                        "bundle": {
                            "resourceType": "Bundle",
                            "type": "collection",
                            "entry": [
                                {
                                    "resource": observation(
                                        f"burst-{i}", i % 200, "2025-01-01T00:00:00Z"
                                    )
                                }
                            ],
                        },
                    },
                }
                msg_id = f"burst_{i}"
                for _ in range(MAX_ATTEMPTS):
                    try:
                        response = await sender.send(client, event, msg_id)
                    except httpx.TransportError:
                        statuses[-1] += 1
                        retries += 1
                        await asyncio.sleep(0.5)
                        continue
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        break
                    if response.status_code in (429, 503):
                        retries += 1
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                        continue
                    raise RuntimeError(
                        f"delivery {i}: {response.status_code} {response.text[:300]}"
                    )
                else:
                    lost.append(i)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(BURST_CLIENTS)))
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "statuses": statuses, "retries": retries, "lost": lost}


def main() -> None:
    # One sealing key for the server and for this process (which adds the hospital).
    os.environ["PHR_SECRETS_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    with scratch_database() as dsn:
        env = {
            "PHR_SECRETS_KEY": os.environ["PHR_SECRETS_KEY"],
            "PHR_WEBHOOK_RATE_LIMIT": str(RATE_LIMIT),
            "PHR_WEBHOOK_RATE_WINDOW_SECONDS": str(RATE_WINDOW),
        }
        with uvicorn_server("api.app:create_app_from_env", dsn, env=env) as (base, _pid):
            asyncio.run(run(base, dsn))


async def run(base: str, dsn: str) -> None:
    from api.cli.hospitals import add_hospital
    from infra.settings import load_settings

    # The sealing key comes from PHR_SECRETS_KEY, so the data folder holds nothing here.
    settings = load_settings(
        {"DATABASE_URL": dsn, "PHR_DATA_DIR": tempfile.mkdtemp(prefix="phr-bench-")}
    )
    hospital = await add_hospital(dsn, settings, "Bench General")
    sender = Sender(base, hospital["id"], hospital["webhookSecret"])
    async with httpx.AsyncClient(timeout=120) as client:
        patient = await register(client, base)
        await link(client, base, sender, hospital["id"], patient, "MRN-BULK")

        # 1. One 1,000-entry bundle, end to end, fresh ids each run (all created).
        bundle = bundle_of("warm", BUNDLE_ENTRIES)
        warm = await sender.send(
            client,
            {"type": "records.push", "data": {"patientRef": "MRN-BULK", "bundle": bundle}},
        )
        assert warm.status_code == 200, warm.text
        timings = []
        for run in range(BUNDLE_RUNS):
            bundle = bundle_of(f"run{run}", BUNDLE_ENTRIES)
            event = {
                "type": "records.push",
                "data": {"patientRef": "MRN-BULK", "bundle": bundle},
            }
            started = time.perf_counter()
            response = await sender.send(client, event)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.json()["created"] == BUNDLE_ENTRIES, (
                response.text
            )
        webhook_rate = BUNDLE_ENTRIES / median(timings)
        copy_rate = await copy_baseline(
            dsn, bundle_of("copy", BUNDLE_ENTRIES), patient["id"], hospital["id"]
        )
        print(
            f"1,000-entry bundle via webhook: {webhook_rate:,.0f} rows/s "
            f"(median of {BUNDLE_RUNS}: {median(timings) * 1000:.0f} ms per delivery)"
        )
        print(f"raw asyncpg COPY of the same rows: {copy_rate:,.0f} rows/s")
        print(f"ratio: {webhook_rate / copy_rate:.2f}x (target >= 0.25x)")

        # 2. The burst, spread over several linked patients.
        patients = [await register(client, base) for _ in range(BURST_PATIENTS)]
        refs = [f"MRN-B{i}" for i in range(BURST_PATIENTS)]
        for who, ref in zip(patients, refs, strict=True):
            await link(client, base, sender, hospital["id"], who, ref)

    result = await burst(base, sender, refs)
    conn = await asyncpg.connect(dsn)
    try:
        ids = [uuid.UUID(p["id"]) for p in patients]
        stored = await conn.fetchval(
            "SELECT count(*) FROM record WHERE patient_id = ANY($1::uuid[]) AND source_resource_id LIKE 'burst-%'",
            ids,
        )
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT source_resource_id) FROM record "
            "WHERE patient_id = ANY($1::uuid[]) AND source_resource_id LIKE 'burst-%'",
            ids,
        )
        deliveries = await conn.fetchval(
            "SELECT count(*) FROM webhook_delivery WHERE delivery_id LIKE 'burst_%' AND reply_status = 200"
        )
    finally:
        await conn.close()
    s = result["statuses"]
    print(
        f"burst: {BURST:,} single-result deliveries from {BURST_CLIENTS} clients, limit {RATE_LIMIT}/{RATE_WINDOW}s per hospital: "
        f"{result['elapsed']:.1f} s, {BURST / result['elapsed']:,.0f} accepted deliveries/s"
    )
    print(
        f"  answers: {dict(sorted(s.items()))} (retries {result['retries']:,}; -1 = transport error)"
    )
    print(
        f"  in the database: {stored:,} records, {distinct:,} distinct, {deliveries:,} delivery ids answered 200; "
        f"lost after {MAX_ATTEMPTS} attempts: {len(result['lost'])}"
    )
    ok = stored == distinct == deliveries == BURST and not result["lost"]
    print(f"  none lost, none duplicated: {'yes' if ok else 'NO'}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
