"""Capacity of one machine: how many audited record reads per second, and which
part saturates first (the API workers or PostgreSQL), from the CPU time each
used while wrk kept them busy. Figures for README's "Past one machine".

    python bench/capacity.py

Reads GET /v1/records/{id} (token check, access policy, the read and its audit
row in one transaction) with 1 and with 2 uvicorn workers. The CPU split is
read from /proc: utime + stime of the workers and of every postgres process,
over the wrk run, as a share of the machine's cores.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.service import scratch_database, uvicorn_server, worker_pids, wrk
from bench.table import Row, holds

SECONDS = float(os.environ.get("PHR_BENCH_SECONDS", "8"))
PASSWORD = "capacity passphrase long enough"
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


PATIENTS = 16


def _script(base: str, folder: Path, patients: list[tuple[dict[str, str], str]]) -> Path:
    """wrk requests spread over many patients: one patient's reads serialize on
    that patient's audit chain head (one commit after another), a realistic load
    does not come from one patient."""
    host = base.removeprefix("http://")
    requests = []
    for headers, record_id in patients:
        raw = (
            f"GET /v1/records/{record_id} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {headers['Authorization']}\r\n\r\n"
        )
        requests.append('"' + raw.replace("\r", "\\r").replace("\n", "\\n") + '"')
    script = folder / "capacity.lua"
    script.write_text(
        "local requests = {" + ",\n".join(requests) + "}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n  return requests[i % #requests + 1]\nend\n"
    )
    return script


def _seed(base: str) -> tuple[dict[str, str], str]:
    """A patient with one self-reported record (no hospital needed)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        email = f"capacity-{uuid.uuid4().hex[:8]}@example.org"
        assert (
            client.post(
                "/v1/auth/register", json={"email": email, "password": PASSWORD}
            ).status_code
            == 202
        )
        token = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
            "accessToken"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        made = client.post(
            "/v1/records",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "Body weight"},
                "effectiveDateTime": "2025-01-01T08:00:00Z",
                "valueQuantity": {"value": 71.5, "unit": "kg"},
            },
            headers=headers,
        )
        if made.status_code != 201:
            raise RuntimeError(f"could not make a record: {made.status_code} {made.text[:300]}")
        return headers, made.json()["id"]


def _no_commit_wait(dsn: str) -> None:
    """A diagnostic, never phr's setting: commits stop waiting for the WAL flush,
    to see whether the flush is what bounds the rate."""
    import asyncio

    import asyncpg

    async def alter() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            name = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        finally:
            await conn.close()

    asyncio.run(alter())


def measure(
    workers: int, patients: int, *, wait_for_flush: bool = True
) -> tuple[float, float, float, float]:
    """(reads/s, p99 ms, API CPU cores used, PostgreSQL CPU cores used)."""
    with scratch_database() as dsn:
        if not wait_for_flush:
            _no_commit_wait(dsn)
        return _measure(dsn, workers, patients)


def _measure(dsn: str, workers: int, patients: int) -> tuple[float, float, float, float]:
    with (
        uvicorn_server("api.app:create_app_from_env", dsn, workers=workers) as (base, pid),
    ):
        import tempfile

        script = _script(
            base,
            Path(tempfile.mkdtemp(prefix="phr-capacity-")),
            [_seed(base) for _ in range(patients)],
        )
        url = base + "/"
        wrk(url, script=script, seconds=2)  # warm-up
        api = worker_pids(pid)
        pg = _postgres_pids()
        api_before = sum(_cpu_seconds(p) for p in api)
        pg_before = sum(_cpu_seconds(p) for p in pg)
        result = wrk(url, script=script, seconds=SECONDS, connections=16)
        api_used = (sum(_cpu_seconds(p) for p in api) - api_before) / result.seconds
        # Backends started during the run count from zero.
        pg_used = (sum(_cpu_seconds(p) for p in _postgres_pids()) - pg_before) / result.seconds
        if result.errors:
            raise RuntimeError(f"{result.errors} errors during the capacity run")
        return result.rps, result.p99_ms, api_used, pg_used


def run(quick: bool) -> list[Row]:
    global SECONDS
    if quick:
        SECONDS = 4.0
    cores = os.cpu_count() or 1
    rows = []
    for workers, patients, flush in (
        (1, 1, True),
        (1, PATIENTS, True),
        (2, PATIENTS, True),
        (2, PATIENTS, False),
    ):
        rps, p99, api, pg = measure(workers, patients, wait_for_flush=flush)
        first = "API workers" if api >= pg else "PostgreSQL"
        print(
            f"{workers} worker(s), {patients} patient(s): {rps:,.0f} audited reads/s, p99 {p99:.1f} ms; CPU cores used: "
            f"API {api:.2f}, PostgreSQL {pg:.2f} of {cores}",
            flush=True,
        )
        rows.append(
            holds(
                f"audited record reads/s, {patients} patient(s), {workers} worker(s) on {cores} cores"
                + ("" if flush else ", commits not waiting for the WAL flush (diagnostic)"),
                rps,
                True,
                "measured",
                unit="req/s",
                note=(
                    f"p99 {p99:.0f} ms; CPU per read: API {api / rps * 1000:.1f} ms, "
                    f"PostgreSQL {pg / rps * 1000:.1f} ms; busier: {first}"
                ),
            )
        )
    return rows


if __name__ == "__main__":
    from bench.table import render

    print(render(run(quick=False)))
