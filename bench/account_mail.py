"""Account mail benchmark: what verification costs a registration, how soon the
code is in the mailbox, and what the per-request session check costs.

    python bench/account_mail.py          # DATABASE_URL, or the embedded server

Prints, against baselines measured in the same run (a real uvicorn on loopback,
mail on the `.eml` default, the job worker inside the server):
1. POST /v1/auth/register latency (p50/p95) with verification on (a code stored,
   a mail.send job queued in the transaction) and off (no code, no mail);
2. time from sending the registration to the `.eml` file holding the code (p50/p95);
3. GET /v1/me (token check: signature + one look-up of the token's session) against
   GET /healthz (no database).
Registrations are sequential: argon2 dominates their latency either way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import ms, p, scratch_database, sequential_latencies, uvicorn_server
from tests.mail_support import EmlFolder, code_in

COUNT = int(os.environ.get("PHR_BENCH_REGISTRATIONS", "30"))
PASSWORD = "bench passphrase that is long enough"


async def registrations(base: str, mail: Path | None) -> tuple[list[float], list[float]]:
    folder = EmlFolder(mail) if mail else None
    latencies, arrivals = [], []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(COUNT):
            email = f"bench-{uuid.uuid4().hex[:12]}@example.org"
            started = time.perf_counter()
            response = await client.post(
                "/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise RuntimeError(f"register: {response.status_code} {response.text[:200]}")
            if folder is not None:
                deadline = started + 30
                while not folder.to(email):
                    if time.perf_counter() > deadline:
                        raise RuntimeError("no mail within 30 s")
                    await asyncio.sleep(0.002)
                code_in(folder.to(email)[0])
                arrivals.append(time.perf_counter() - started)
    return latencies, arrivals


async def session_check(base: str) -> tuple[list[float], list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        email = f"bench-{uuid.uuid4().hex[:12]}@example.org"
        await client.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
        login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        await sequential_latencies(client, "/v1/me", headers=headers, count=50)  # warm-up
        me = await sequential_latencies(client, "/v1/me", headers=headers, count=300)
        health = await sequential_latencies(client, "/healthz", count=300)
    return me, health


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="phr-bench-mail-"))
    try:
        with scratch_database() as dsn:
            on = {"PHR_EMAIL_VERIFICATION": "on", "PHR_DATA_DIR": str(data_dir)}
            with uvicorn_server("api.app:create_app_from_env", dsn, env=on) as (base, _):
                asyncio.run(registrations(base, None))  # warm-up (hasher, pool, keys)
                shutil.rmtree(data_dir / "mail", ignore_errors=True)
                with_mail, arrivals = asyncio.run(registrations(base, data_dir / "mail"))
            with uvicorn_server("api.app:create_app_from_env", dsn) as (base, _):
                asyncio.run(registrations(base, None))  # warm-up
                without_mail, _ = asyncio.run(registrations(base, None))
                me, health = asyncio.run(session_check(base))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"registrations: {COUNT} sequential, each with an argon2id hash")
    print(
        f"  verification off (baseline): p50 {ms(p(without_mail, 0.5))}  "
        f"p95 {ms(p(without_mail, 0.95))}"
    )
    print(
        f"  verification on:             p50 {ms(p(with_mail, 0.5))}  p95 {ms(p(with_mail, 0.95))}"
        f"  ({p(with_mail, 0.5) / p(without_mail, 0.5):.2f}x)"
    )
    print(
        f"code in the .eml mailbox after: p50 {ms(p(arrivals, 0.5))}  p95 {ms(p(arrivals, 0.95))}"
    )
    print(f"GET /healthz (baseline): p50 {ms(p(health, 0.5))}  p95 {ms(p(health, 0.95))}")
    print(f"GET /v1/me (token + session check): p50 {ms(p(me, 0.5))}  p95 {ms(p(me, 0.95))}")


if __name__ == "__main__":
    main()
