"""Sharing benchmark: share creations per second end to end (create the share,
then fetch its QR code, as the app does), against the bare QR rendering rate in
this same run; and manifest resolution latency with 20 doctors at once.

    python bench/share.py        (PHR_BENCH_SECONDS sets each phase's length)

Every request goes to a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import ms, p, scratch_database, uvicorn_server
from infra.qr import render_qr

SECONDS = float(os.environ.get("PHR_BENCH_SECONDS", "5"))
CREATORS = 8
DOCTORS = 20
RECORDS_PER_PATIENT = 12


def bare_qr_rate(text: str, seconds: float) -> float:
    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        render_qr(text, "png")
        count += 1
    return count / (time.perf_counter() - started)


async def patient(client: httpx.AsyncClient) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    password = f"correct horse {uuid.uuid4().hex[:8]} battery"
    await client.post("/v1/auth/register", json={"email": email, "password": password})
    tokens = (
        await client.post("/v1/auth/login", json={"email": email, "password": password})
    ).json()
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    for i in range(RECORDS_PER_PATIENT):
        when = (datetime.now(UTC) - timedelta(days=i * 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        response = await client.post(
            "/v1/records",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": f"Home blood pressure {i}"},
                "effectiveDateTime": when,
                "valueQuantity": {"value": 120 + i, "unit": "mm[Hg]"},
            },
            headers=headers,
        )
        response.raise_for_status()
    return headers


def expires() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def creations(client: httpx.AsyncClient, headers: list[dict[str, str]], seconds: float):
    done: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(h: dict[str, str]) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            created = await client.post(
                "/v1/shares", json={"expiresAt": expires(), "label": "bench"}, headers=h
            )
            if created.status_code != 201:
                raise RuntimeError(f"create answered {created.status_code}: {created.text}")
            qr = await client.get(created.json()["qrUrl"], headers=h)
            if qr.status_code != 200:
                raise RuntimeError(f"qr answered {qr.status_code}")
            done.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(headers[i % len(headers)]) for i in range(CREATORS)))
    return len(done) / (time.perf_counter() - started), done


def manifest_url(shlink: str) -> str:
    encoded = shlink.split("shlink:/", 1)[1]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))["url"]


async def doctors(client: httpx.AsyncClient, urls: list[str], seconds: float):
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def doctor(i: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.post(urls[i], json={"recipient": f"Dr. Bench {i}"})
            if response.status_code != 200:
                raise RuntimeError(f"manifest answered {response.status_code}: {response.text}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(doctor(i) for i in range(DOCTORS)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def measure(base: str, qr_rate_before: float, sample_url: str) -> None:
    limits = httpx.Limits(max_connections=DOCTORS + 8, max_keepalive_connections=DOCTORS + 8)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        headers = [await patient(client) for _ in range(DOCTORS)]
        await creations(client, headers, 1.0)  # warm-up
        rate, latencies = await creations(client, headers, SECONDS)
        qr_rate_after = await asyncio.to_thread(bare_qr_rate, sample_url, SECONDS / 2)
        qr_rate = (qr_rate_before + qr_rate_after) / 2
        print(
            f"2. share creations end to end (POST /v1/shares + GET qr), {CREATORS} clients: "
            f"{rate:.1f}/s (target >= 60/s); p50 {ms(p(latencies, 0.5))}, "
            f"p99 {ms(p(latencies, 0.99))}"
        )
        print(
            f"   bare QR rendering again: {qr_rate_after:.1f}/s; mean {qr_rate:.1f}/s; "
            f"creations are {rate / qr_rate:.2f}x the bare QR rate"
        )

        for kind, body in (
            ("snapshot", {}),
            ("long-term (rebuilt per request)", {"longTerm": True}),
        ):
            urls = []
            for h in headers:
                created = await client.post(
                    "/v1/shares", json={"expiresAt": expires(), **body}, headers=h
                )
                urls.append(manifest_url(created.json()["shlink"]))
            await doctors(client, urls, 1.0)  # warm-up
            rate, latencies = await doctors(client, urls, SECONDS)
            print(
                f"3. manifest, {kind}, {DOCTORS} concurrent doctors: {rate:.1f}/s, "
                f"p50 {ms(p(latencies, 0.5))}, p99 {ms(p(latencies, 0.99))}"
            )


def main() -> None:
    sample = "http://127.0.0.1:8000/viewer#shlink:/" + base64.urlsafe_b64encode(
        json.dumps(
            {
                "url": "http://127.0.0.1:8000/shl/" + "A" * 43,
                "key": "B" * 43,
                "exp": 1_800_000_000,
                "label": "bench",
                "v": 1,
            }
        ).encode()
    ).decode().rstrip("=")
    qr_rate = bare_qr_rate(sample, SECONDS / 2)
    print(f"1. bare QR rendering (PNG, EC M, {len(sample)}-character viewer URL): {qr_rate:.1f}/s")
    env = {
        "PHR_SHARE_REQUESTS_PER_LINK": "1000000",
        "PHR_SHARE_REQUESTS_PER_ADDRESS": "1000000",
        "PHR_LOGIN_ADDRESS_FAILURES": "1000000",
    }
    with (
        scratch_database() as dsn,
        uvicorn_server("api.app:create_app_from_env", dsn, env=env) as (base, _pid),
    ):
        asyncio.run(measure(base, qr_rate, sample))


if __name__ == "__main__":
    main()
