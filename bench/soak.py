"""Soak: does a worker's memory stay flat under a long mixed load?

    python bench/soak.py              # 200,000 requests, 2 workers
    PHR_SOAK_REQUESTS=50000 python bench/soak.py

wrk drives a mix through two uvicorn workers: 8 in 10 requests read (a record,
the first timeline page, a deeper page, the profile), 1 in 10 is a hospital push
of a new result (signed, a fresh webhook-id each) and 1 in 10 is a doctor
resolving a share's manifest (a snapshot share and a long-term one, rebuilt per
request, by a few named recipients); one in a hundred is a sign-in (argon2id).
The run is cut into ten chunks; after each,
every worker's RSS is read from /proc. The first chunk warms the workers up
(caches, pools, code paths); its RSS is the baseline, and every later sample
must stay within +-5% of it. `uptime` is printed before and after: the figure
means little on a loaded machine.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import peak_rss_kib, scratch_database, uvicorn_server, worker_pids, wrk
from bench.table import Row, at_most, holds

REQUESTS = int(os.environ.get("PHR_SOAK_REQUESTS", "200000"))
CHUNKS = 10
WORKERS = int(os.environ.get("PHR_SOAK_WORKERS", "2"))
CONNECTIONS = 8
DRIFT_LIMIT_PERCENT = 5.0
WARMUP_SECONDS = float(os.environ.get("PHR_SOAK_WARMUP_SECONDS", "15"))
PASSWORD = "soak passphrase that is long enough"


def _lua(text: str) -> str:
    return (
        '"'
        + (text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n"))
        + '"'
    )


def _request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode()


def _push(secret: str, ref: str, n: int) -> tuple[bytes, dict[str, str]]:
    resource = {
        "resourceType": "Observation",
        "id": f"soak-{ref}-{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "effectiveDateTime": f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        "valueQuantity": {"value": 50 + n % 60, "unit": "/min"},
    }
    body = json.dumps(
        {
            "type": "records.push",
            "data": {
                "patientRef": ref,
                "bundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": resource}],
                },
            },
        }
    ).encode()
    msg_id = f"soak_{ref}_{n}"
    now = datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "Content-Type": "application/json",
    }
    return body, headers


def chunk_script(
    folder: Path,
    host: str,
    token: str,
    reads: list[str],
    hospital: dict,
    ref: str,
    first: int,
    count: int,
    manifests: list[tuple[str, str]],
    sign_in: bytes,
) -> Path:
    """A wrk script for about `count` requests: reads cycling, every tenth a
        fresh push (pushes repeat, as idempotent redeliveries, only past `count`),
        every tenth (offset by five) a manifest request as a named doctor, and one in
    a hundred a sign-in."""
    auth = {"Authorization": f"Bearer {token}"}
    read_requests = [_request("GET", path, host, auth) for path in reads]
    login = _request("POST", "/v1/auth/login", host, {"Content-Type": "application/json"}, sign_in)
    manifest_requests = [
        _request(
            "POST",
            path,
            host,
            {"Content-Type": "application/json"},
            json.dumps({"recipient": doctor}).encode(),
        )
        for path, doctor in manifests
    ]
    pushes = []
    for n in range(first, first + count // 10 + 1):
        body, headers = _push(hospital["webhookSecret"], ref, n)
        pushes.append(
            _request("POST", f"/v1/hospitals/{hospital['id']}/webhook", host, headers, body)
        )
    script = folder / f"chunk-{first}.lua"
    script.write_text(
        "local reads = {" + ",\n".join(_lua(r) for r in read_requests) + "}\n"
        "local pushes = {" + ",\n".join(_lua(r) for r in pushes) + "}\n"
        "local manifests = {" + ",\n".join(_lua(r) for r in manifest_requests) + "}\n"
        "local login = " + _lua(login) + "\n"
        """
local i, j, k = 0, 0, 0
request = function()
  i = i + 1
  if i % 10 == 0 then
    j = j + 1
    return pushes[(j - 1) % #pushes + 1]
  end
  if i % 100 == 3 then
    return login
  end
  if i % 10 == 5 then
    k = k + 1
    return manifests[(k - 1) % #manifests + 1]
  end
  return reads[i % #reads + 1]
end
"""
    )
    return script


def manifest_url(shlink: str) -> str:
    encoded = shlink.split("shlink:/", 1)[1]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))["url"]


def linked_patient(client: httpx.Client, hospital: dict, ref: str, records: int):
    """A patient registered, linked to the hospital as `ref` and pushed `records`
    results; returns a function that signs in again (a fresh access token), and
    the patient's e-mail."""
    email = f"soak-{uuid.uuid4().hex[:8]}@example.org"
    made = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert made.status_code == 202, made.text

    def token() -> str:
        return client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
            "accessToken"
        ]

    auth = {"Authorization": f"Bearer {token()}"}
    code = client.post("/v1/links", json={"hospitalId": hospital["id"]}, headers=auth).json()[
        "code"
    ]
    body = json.dumps(
        {"type": "patient.linked", "data": {"code": code, "patientRef": ref}}
    ).encode()
    now = datetime.now(UTC)
    msg_id = f"soak_link_{ref}"
    linked = client.post(
        f"/v1/hospitals/{hospital['id']}/webhook",
        content=body,
        headers={
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(hospital["webhookSecret"]).sign(
                msg_id, now, body.decode()
            ),
            "content-type": "application/json",
        },
    )
    assert linked.status_code == 200, linked.text
    for n in range(-records, 0):
        b, h = _push(hospital["webhookSecret"], ref, n)
        pushed = client.post(f"/v1/hospitals/{hospital['id']}/webhook", content=b, headers=h)
        assert pushed.status_code == 200, pushed.text
    return token, email


def warm_sign_ins(base: str, sign_in: bytes, rounds: int = 4, at_once: int = 8) -> None:
    """Sign-ins, several at once, before the warm-up chunk: once a hashing
    thread has hashed twice, glibc keeps argon2's 19 MiB in its arena (bounded,
    see infra/password_hasher.py). Left to the mix's 1-in-100 sign-ins, a worker
    (or a second hashing thread) might first do so after the baseline is taken:
    a 19 MiB step that is warm-up, not growth (the step the soak first saw)."""

    def one(_: int) -> int:
        with httpx.Client(base_url=base, timeout=60) as fresh:
            return fresh.post(
                "/v1/auth/login", content=sign_in, headers={"Content-Type": "application/json"}
            ).status_code

    with ThreadPoolExecutor(max_workers=at_once) as pool:
        for _ in range(rounds):
            statuses = list(pool.map(one, range(at_once)))
            assert statuses == [200] * at_once, statuses


def uptime() -> str:
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run(quick: bool) -> list[Row]:
    total = min(REQUESTS, 20_000) if quick else REQUESTS
    per_chunk = total // CHUNKS
    os.environ["PHR_SECRETS_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        "PHR_SECRETS_KEY": os.environ["PHR_SECRETS_KEY"],
        "PHR_WEBHOOK_RATE_LIMIT": "100000000",
        "PHR_WEBHOOK_ADDRESS_LIMIT": "100000000",
        "PHR_SHARE_REQUESTS_PER_LINK": "100000000",
        "PHR_SHARE_REQUESTS_PER_ADDRESS": "100000000",
        # Sign-ins in flight count as attempts until they succeed: one account
        # signing in on several connections at once would hit the failure limits.
        "PHR_LOGIN_ACCOUNT_FAILURES": "100000000",
        "PHR_LOGIN_ADDRESS_FAILURES": "100000000",
        "PHR_LOG_LEVEL": "WARNING",
    }
    folder = Path(tempfile.mkdtemp(prefix="phr-soak-"))
    load_before = uptime()
    print(f"uptime before: {load_before}", flush=True)
    with (
        scratch_database() as dsn,
        uvicorn_server("api.app:create_app_from_env", dsn, env=env, workers=WORKERS) as (base, pid),
    ):
        import asyncio

        from api.cli.hospitals import add_hospital
        from infra.settings import load_settings

        settings = load_settings(
            {
                "DATABASE_URL": dsn,
                "PHR_DATA_DIR": str(folder),
                "PHR_SECRETS_KEY": env["PHR_SECRETS_KEY"],
            }
        )
        hospital = asyncio.run(add_hospital(dsn, settings, "Soak General"))
        client = httpx.Client(base_url=base, timeout=60)
        # The patient whose timeline is read and who gets the soak's pushes, and
        # one who shares a fixed record set: a long-term share is rebuilt per
        # request from every live record, so a share of the patient the soak keeps
        # pushing to would grow with the run (a bigger manifest each time, not a
        # leak) and no RSS could stay flat.
        token, email = linked_patient(client, hospital, "SOAK-1", 200)
        sharer_token, _ = linked_patient(client, hospital, "SOAK-SHARE", 50)
        sign_in = json.dumps({"email": email, "password": PASSWORD}).encode()
        warm_sign_ins(base, sign_in)
        auth = {"Authorization": f"Bearer {token()}"}
        page = client.get("/v1/records?limit=20", headers=auth).json()
        ids = [item["id"] for item in page["items"]]
        reads = [f"/v1/records/{i}" for i in ids[:4]] + [
            "/v1/records?limit=20",
            f"/v1/records?limit=20&cursor={page['nextCursor']}",
            "/v1/me",
        ]
        manifests = []
        sharer = {"Authorization": f"Bearer {sharer_token()}"}
        for body in ({}, {"longTerm": True}):
            expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
            share = client.post(
                "/v1/shares",
                json={"expiresAt": expires.isoformat(), "label": "soak", **body},
                headers=sharer,
            )
            assert share.status_code == 201, share.text
            url = manifest_url(share.json()["shlink"])
            path = "/" + url.split("://", 1)[1].split("/", 1)[1]
            for doctor in ("Dr. Soak", "Dr. Flat", "Dr. Steady"):
                resolved = client.post(path, json={"recipient": doctor})
                assert resolved.status_code == 200, resolved.text
                manifests.append((path, doctor))
        host = base.removeprefix("http://")
        workers = worker_pids(pid)
        samples: list[list[int]] = []
        done = errors = 0
        elapsed = 0.0
        # wrk runs for a duration, not a count: the first chunk (the warm-up)
        # runs WARMUP_SECONDS, and its rate sizes the others to reach the total.
        rate = 0.0
        chunk = 0
        while done < total and chunk < CHUNKS * 2:
            if chunk == 0:
                seconds, expected = WARMUP_SECONDS, int(per_chunk * 2)
            else:
                left = max(total - done, 1)
                expected = max(left // max(CHUNKS - chunk, 1), 1)
                seconds = max(1.0, expected / rate)
            script = chunk_script(
                folder,
                host,
                token(),
                reads,
                hospital,
                "SOAK-1",
                chunk * 10 * per_chunk,
                expected * 2,
                manifests,
                sign_in,
            )
            result = wrk(base + "/", script=script, seconds=seconds, connections=CONNECTIONS)
            chunk += 1
            if chunk == 1:
                warmup_requests = result.requests
            done += result.requests
            errors += result.errors
            elapsed += result.seconds
            rate = result.rps or 1.0
            rss = [peak_rss_kib(w)[0] for w in workers]
            samples.append(rss)
            print(
                f"chunk {chunk}: {result.requests:,} requests ({done:,} in all), {result.rps:,.0f} req/s, "
                f"errors {result.errors}, RSS per worker {[round(r / 1024, 1) for r in rss]} MiB",
                flush=True,
            )
        client.close()
    base_rss = samples[0]
    drift = max(
        abs(sample[w] - base_rss[w]) / base_rss[w] * 100
        for sample in samples[1:]
        for w in range(len(workers))
    )
    load_after = uptime()
    print(f"uptime after: {load_after}", flush=True)
    print(f"soak: {done:,} requests in {elapsed:.0f} s; max RSS drift {drift:.1f}% after warm-up")
    start_end = ", ".join(
        f"worker {w + 1} {base_rss[w] / 1024:.0f} -> {samples[-1][w] / 1024:.0f} MiB"
        for w in range(len(workers))
    )
    print(f"soak: RSS per worker after warm-up -> at the end: {start_end}")
    return [
        at_most(
            f"soak: RSS drift per worker over {done:,} mixed requests ({WORKERS} workers)",
            drift,
            DRIFT_LIMIT_PERCENT,
            unit="%",
            note=(
                f"after a {warmup_requests:,}-request ({WARMUP_SECONDS:g} s) warm-up: "
                f"{start_end}; {done / elapsed:,.0f} req/s; load before/after "
                f"{load_before.split('load average: ')[-1]} / "
                f"{load_after.split('load average: ')[-1]}"
            ),
        ),
        holds(
            "soak: requests answered 2xx",
            done - errors,
            errors == 0,
            "no errors",
            note=f"{errors} errors",
        ),
    ]


if __name__ == "__main__":
    from bench.table import render

    print(render(run(quick=False)))
