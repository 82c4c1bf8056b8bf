"""`python -m bench`: every benchmark, one table.

    python -m bench                  # all of them (DATABASE_URL, or the embedded server)
    python -m bench --quick          # smaller loads: a smoke run in a few minutes
    python -m bench --only records,soak --json bench/results/latest.json

The contract a bench module follows to be picked up (any `bench/*.py`):

    from bench.table import Row, at_least_ratio, at_most_ratio, at_most, holds

    def run(quick: bool) -> list[Row]:
        ...  # start what it needs (bench.service: scratch_database, uvicorn_server,
             # wrk), measure phr AND its baseline in this same run, return the rows

Each `Row` is one figure: `metric`, `phr`, `baseline` (measured now, or None when
an absolute limit is the target), `unit`, `ratio`, `target` (text) and `passed`;
the helpers in bench/table.py fill ratio, target and passed. HTTP throughput is
measured with wrk (`bench.service.wrk`), never with a Python client, which
saturates first on a small machine. Helper modules (service.py, table.py,
bare_record_app.py) are not benchmarks; any other module without `run` is
reported as skipped, with the reason, in a failing row (never dropped silently). A bench that raises gives one failing row with the error;
the others still run. The exit status is 1 when any row failed.

The table is printed as Markdown and written as JSON with the machine it ran on
(default bench/results/latest.json, and bench/results/quick.json for a --quick smoke
run, which git ignores); README shows the latest one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.table import Row, render

BENCH_DIR = Path(__file__).resolve().parent
# Not benchmarks: shared helpers and the baseline app.
_NOT_BENCHES = {"service", "table", "bare_record_app", "__main__"}


class Machine(msgspec.Struct):
    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    python: str
    postgresql: str
    wrk: str


class Report(msgspec.Struct):
    ran_at: str
    quick: bool
    seconds: float
    machine: Machine
    rows: list[Row]


def discover() -> list[str]:
    names = []
    for info in pkgutil.iter_modules([str(BENCH_DIR)]):
        if info.name in _NOT_BENCHES or info.name.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def machine() -> Machine:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 2**20
    except OSError:
        pass
    try:
        from infra.embedded_postgres import _bin

        postgresql = _first_line([str(_bin("postgres")), "--version"])
    except Exception:
        postgresql = "?"
    return Machine(
        cpu=cpu,
        cores=os.cpu_count() or 0,
        memory_gib=round(memory, 1),
        kernel=platform.release(),
        python=platform.python_version(),
        postgresql=postgresql,
        wrk=_first_line(["wrk", "--version"]).split(" Copyright")[0],
    )


def run_bench(name: str, quick: bool) -> list[Row]:
    module = importlib.import_module(f"bench.{name}")
    run = getattr(module, "run", None)
    if not callable(run):
        reason = "skipped: the module has no run(quick) -> list[Row] (bench/__main__.py)"
        print(f"\n== {name} == {reason}", flush=True)
        return [
            Row(
                bench=name,
                metric="bench ran",
                phr=0,
                target="run(quick)",
                passed=False,
                note=reason,
            )
        ]
    print(f"\n== {name} ==", flush=True)
    started = time.perf_counter()
    try:
        rows = list(run(quick))
    except Exception as exc:
        traceback.print_exc()
        rows = [
            Row(metric="bench ran", phr=0, target="no error", passed=False, note=repr(exc)[:200])
        ]
    for row in rows:
        row.bench = name
    print(f"   ({name}: {time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads, a smoke run")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument(
        "--json",
        default=None,
        help="where the table goes as JSON (default bench/results/latest.json; with "
        "--quick bench/results/quick.json, so a smoke run leaves the committed figures)",
    )
    args = parser.parse_args(argv)
    if args.json is None:
        args.json = str(BENCH_DIR / "results" / ("quick.json" if args.quick else "latest.json"))
    names = discover()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(wanted) - set(names)
        if unknown:
            parser.error(f"no such bench: {', '.join(sorted(unknown))} (have {', '.join(names)})")
        names = wanted
    started = time.perf_counter()
    rows: list[Row] = []
    for name in names:
        rows += run_bench(name, args.quick)
    report = Report(
        ran_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        quick=args.quick,
        seconds=round(time.perf_counter() - started, 1),
        machine=machine(),
        rows=rows,
    )
    m = report.machine
    print(
        f"\n{m.cpu}, {m.cores} cores, {m.memory_gib} GiB, Linux {m.kernel}, Python {m.python}, "
        f"{m.postgresql}, {m.wrk}; {report.seconds:.0f} s" + (" (quick)" if args.quick else "")
    )
    print(render(rows))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    print(f"\nwritten to {out}")
    return 0 if rows and all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
