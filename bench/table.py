"""The one benchmark table: every bench module returns rows of it.

A row is one figure of phr against a baseline measured in the same run (or
against a fixed limit when no baseline makes sense), with the target it must
meet and whether it met it."""

from __future__ import annotations

import math

import msgspec


class Row(msgspec.Struct, kw_only=True):
    bench: str = ""  # filled in by the runner: the module's name
    metric: str
    phr: float
    baseline: float | None = None
    unit: str = ""
    # phr / baseline, or None without a baseline.
    ratio: float | None = None
    # e.g. ">= 0.6x baseline", "<= 10 ms", "none lost"
    target: str
    passed: bool
    note: str = ""


def at_least_ratio(
    metric: str, phr: float, baseline: float, minimum: float, *, unit: str = "", note: str = ""
) -> Row:
    """phr must reach `minimum` times the baseline (throughputs)."""
    ratio = phr / baseline if baseline else math.nan
    return Row(
        metric=metric,
        phr=phr,
        baseline=baseline,
        unit=unit,
        ratio=ratio,
        target=f">= {minimum:g}x",
        passed=ratio >= minimum,
        note=note,
    )


def at_most_ratio(
    metric: str, phr: float, baseline: float, maximum: float, *, unit: str = "", note: str = ""
) -> Row:
    """phr may be at most `maximum` times the baseline (latencies)."""
    ratio = phr / baseline if baseline else math.nan
    return Row(
        metric=metric,
        phr=phr,
        baseline=baseline,
        unit=unit,
        ratio=ratio,
        target=f"<= {maximum:g}x",
        passed=ratio <= maximum,
        note=note,
    )


def at_most(
    metric: str,
    phr: float,
    maximum: float,
    *,
    unit: str = "",
    baseline: float | None = None,
    note: str = "",
) -> Row:
    """An absolute limit (a p50 in ms, a drift in %); a baseline, if any, is context."""
    return Row(
        metric=metric,
        phr=phr,
        baseline=baseline,
        unit=unit,
        ratio=phr / baseline if baseline else None,
        target=f"<= {maximum:g} {unit}".rstrip(),
        passed=phr <= maximum,
        note=note,
    )


def holds(metric: str, phr: float, ok: bool, target: str, *, unit: str = "", note: str = "") -> Row:
    """A property that must hold (none lost, none doubled), with a figure for context."""
    return Row(metric=metric, phr=phr, unit=unit, target=target, passed=ok, note=note)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: list[Row]) -> str:
    """A Markdown table (it reads as well in a terminal as in the README)."""
    header = ["bench", "metric", "phr", "baseline", "ratio", "target", "pass"]
    lines = [header]
    for row in rows:
        unit = f" {row.unit}" if row.unit else ""
        lines.append(
            [
                row.bench,
                row.metric + (f" ({row.note})" if row.note else ""),
                fmt(row.phr) + unit,
                (fmt(row.baseline) + unit) if row.baseline is not None else "-",
                f"{fmt(row.ratio)}x" if row.ratio is not None else "-",
                row.target,
                "pass" if row.passed else "FAIL",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
