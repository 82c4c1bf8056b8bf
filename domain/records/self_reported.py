"""Records the patient entered themself carry a tag that says so."""

from __future__ import annotations

from typing import Any

SELF_REPORTED_TAG = {
    "system": "https://phr.example/fhir/CodeSystem/provenance",
    "code": "self-reported",
    "display": "Entered by the patient",
}


def tag_self_reported(resource: dict[str, Any]) -> dict[str, Any]:
    resource = dict(resource)
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != SELF_REPORTED_TAG["code"]]
    tags.append(dict(SELF_REPORTED_TAG))
    meta["tag"] = tags
    resource["meta"] = meta
    return resource
