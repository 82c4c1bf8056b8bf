"""QIDO-RS (PS3.18 10.6) as rules: the query a search carries, PS3.4 attribute
matching, and the DICOM JSON each level of result answers with. Pure functions
over stored attributes; domain.imaging.dicomweb runs them inside its access decisions."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from domain.imaging.dicom import DEFAULT_TAGS, Level, element
from domain.imaging.store import StoredInstance, StoredSeries, StoredStudy

MAX_QIDO_LIMIT = 1000


class QidoQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Attribute filters by tag (`00100020`), the extra tags to include (or all),
    and the page. Values follow PS3.18 8.3.4: `*`/`?` wildcards, `a-b` date
    ranges, backslash-separated UID lists."""

    filters: dict[str, str] = msgspec.field(default_factory=dict)
    include: frozenset[str] = frozenset()
    include_all: bool = False
    limit: int = 100
    offset: int = 0


def _wildcard(pattern: str) -> re.Pattern[str]:
    escaped = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(escaped, re.IGNORECASE | re.DOTALL)


def _texts(attributes: dict[str, Any], tag: str) -> list[str]:
    values = (attributes.get(tag) or {}).get("Value") or []
    out: list[str] = []
    for value in values:
        if isinstance(value, dict):  # PN: {"Alphabetic": "..."}
            out.append(str(value.get("Alphabetic", "")))
        else:
            out.append(str(value))
    return out


def matches(attributes: dict[str, Any], filters: dict[str, str]) -> bool:
    """PS3.4 C.2.2.2 matching, the parts DICOMweb clients use."""
    for tag, wanted in filters.items():
        if wanted == "":
            continue  # universal matching: "return this attribute"
        values = _texts(attributes, tag)
        vr = (attributes.get(tag) or {}).get("vr")
        if "\\" in wanted and vr == "UI":
            if not set(values) & set(wanted.split("\\")):
                return False
        elif vr in ("DA", "TM", "DT") and "-" in wanted:
            low, _, high = wanted.partition("-")
            if not any((not low or v >= low) and (not high or v <= high) for v in values):
                return False
        elif "*" in wanted or "?" in wanted:
            pattern = _wildcard(wanted)
            if not any(pattern.fullmatch(v) for v in values):
                return False
        elif vr == "PN":
            if not any(v.lower() == wanted.lower() for v in values):
                return False
        elif wanted not in values:
            return False
    return True


def _pick(attributes: dict[str, Any], level: Level, query: QidoQuery) -> dict[str, Any]:
    if query.include_all:
        return dict(attributes)
    keep = DEFAULT_TAGS[level] | query.include | frozenset(query.filters)
    return {tag: value for tag, value in attributes.items() if tag in keep}


def _retrieve_url(base: str, *uids: str) -> str:
    parts = ["studies", "series", "instances"]
    return base + "".join(f"/{parts[n]}/{uid}" for n, uid in enumerate(uids))


def study_json(study: StoredStudy, base: str, query: QidoQuery) -> dict[str, Any]:
    out = _pick(study.attributes, "study", query)
    modalities = sorted({s.modality for s in study.series if s.modality})
    out["00080061"] = element("CS", *modalities)
    out["00201206"] = element("IS", len(study.series))
    out["00201208"] = element("IS", study.instance_count)
    out["00081190"] = element("UR", _retrieve_url(base, study.study_uid))
    return dict(sorted(out.items()))


def series_json(series: StoredSeries, base: str, query: QidoQuery) -> dict[str, Any]:
    out = _pick(series.attributes, "series", query)
    out["0020000D"] = element("UI", series.study_uid)
    out["00201209"] = element("IS", series.instance_count)
    out["00081190"] = element("UR", _retrieve_url(base, series.study_uid, series.series_uid))
    return dict(sorted(out.items()))


def instance_json(instance: StoredInstance, base: str, query: QidoQuery) -> dict[str, Any]:
    out = _pick(instance.metadata or {}, "instance", query)
    out["0020000D"] = element("UI", instance.study_uid)
    out["0020000E"] = element("UI", instance.series_uid)
    out["00081190"] = element(
        "UR", _retrieve_url(base, instance.study_uid, instance.series_uid, instance.instance_uid)
    )
    return dict(sorted(out.items()))


def page(items: list[Any], query: QidoQuery) -> list[Any]:
    return items[query.offset : query.offset + query.limit]
