"""A whole FHIR Bundle: every entry validated, internal urn:uuid references
resolved to Type/id, search outcomes and message headers left out."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from domain.fhir.catalogue import ACCEPTED_BUNDLE_TYPES, RESOURCE_ID, SUPPORTING_TYPES, known_type
from domain.fhir.index import IndexedFields
from domain.fhir.validation import EntryProblem, InvalidFhir, show_value, validate_resource

_URN_UUID = re.compile(r"urn:uuid:([0-9a-fA-F-]{1,64})", re.ASCII)
# Nesting deeper than this is no FHIR resource; refusing it keeps the walks bounded.
_MAX_DEPTH = 64


class ParsedEntry(msgspec.Struct, frozen=True):
    index: int
    full_url: str | None
    resource: dict
    fields: IndexedFields
    is_supporting: bool


def parse_bundle(bundle: dict) -> list[ParsedEntry]:
    """Validate every entry of a Bundle and resolve its internal references.

    Returns the entries to store, in Bundle order. Search outcomes (OperationOutcome)
    and a message Bundle's MessageHeader are not records and are left out. Raises one
    InvalidFhir naming every bad entry (the first problem of each)."""
    entries = _bundle_entries(bundle)
    problems: list[EntryProblem] = []
    kept: list[tuple[int, str | None, dict]] = []
    for index, entry in enumerate(entries):
        problem, item = _entry_resource(index, entry, bundle.get("type"))
        if problem:
            problems.append(problem)
        elif item is not None:
            kept.append((index, item[0], item[1]))

    # First pass: give id-less urn:uuid entries their id, and map fullUrl -> Type/id.
    targets: dict[str, str] = {}
    resources: list[tuple[int, str | None, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, full_url, resource in kept:
        resource_type = resource.get("resourceType")
        urn = _URN_UUID.fullmatch(full_url) if isinstance(full_url, str) else None
        if urn and "id" not in resource and isinstance(resource_type, str):
            resource = {**resource, "id": _id_from_uuid(urn[1])}
        rid = resource.get("id")
        if isinstance(full_url, str) and full_url.startswith("urn:"):
            if isinstance(resource_type, str) and isinstance(rid, str):
                targets.setdefault(full_url, f"{resource_type}/{rid}")
        if isinstance(resource_type, str) and isinstance(rid, str):
            first = seen.setdefault((resource_type, rid), index)
            if first != index:
                problems.append(
                    EntryProblem(
                        index,
                        known_type(resource_type),
                        "id",
                        f"field 'id' repeats {resource_type}/{rid} of entry {first}",
                    )
                )
                continue
        resources.append((index, full_url, resource))

    parsed: list[ParsedEntry] = []
    for index, full_url, resource in resources:
        try:
            rewritten = resource if _plain(resource) else _rewrite_references(resource, targets, 0)
        except _TooDeep:
            problems.append(
                EntryProblem(index, None, "", f"the resource nests deeper than {_MAX_DEPTH} levels")
            )
            continue
        try:
            fields = validate_resource(rewritten, entry_index=index)
        except InvalidFhir as exc:
            problems.extend(exc.problems[:1])
            continue
        parsed.append(
            ParsedEntry(
                index=index,
                full_url=full_url,
                resource=rewritten,
                fields=fields,
                is_supporting=fields.resource_type in SUPPORTING_TYPES
                or fields.resource_type == "Patient",
            )
        )
    if problems:
        problems.sort(key=lambda p: -1 if p.entry_index is None else p.entry_index)
        raise InvalidFhir(problems)
    return parsed


def _bundle_entries(bundle: Any) -> list:
    def fail(field: str, message: str) -> InvalidFhir:
        return InvalidFhir([EntryProblem(None, "Bundle", field, message, scope="bundle")])

    if not isinstance(bundle, dict):
        raise fail("", "the bundle must be a JSON object")
    if bundle.get("resourceType") != "Bundle":
        raise fail(
            "resourceType",
            f"field 'resourceType' must be 'Bundle', got {show_value(bundle.get('resourceType'))}",
        )
    bundle_type = bundle.get("type")
    if bundle_type is None:
        raise fail("type", "field 'type' is required")
    if not isinstance(bundle_type, str) or bundle_type not in ACCEPTED_BUNDLE_TYPES:
        raise fail(
            "type",
            f"field 'type' {show_value(bundle_type)} is not accepted "
            f"(allowed: {', '.join(sorted(ACCEPTED_BUNDLE_TYPES))})",
        )
    entries = bundle.get("entry")
    if entries is None:
        raise fail("entry", "field 'entry' is required: the bundle has no entries")
    if not isinstance(entries, list):
        raise fail("entry", "field 'entry' must be an array")
    if not entries:
        raise fail("entry", "field 'entry' is empty: the bundle has no entries")
    return entries


def _entry_resource(
    index: int, entry: Any, bundle_type: Any
) -> tuple[EntryProblem | None, tuple[str | None, dict] | None]:
    """(problem, None), (None, (fullUrl, resource)) or (None, None) to skip."""

    def bad(field: str, message: str, resource_type: str | None = None) -> EntryProblem:
        return EntryProblem(index, resource_type, field, message, scope="entry")

    if not isinstance(entry, dict):
        return bad("", "the entry must be a JSON object"), None
    resource = entry.get("resource")
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    shown = known_type(resource_type)
    request = entry.get("request")
    if request is not None:
        method = request.get("method") if isinstance(request, dict) else None
        if method == "DELETE":
            return bad(
                "request.method",
                "field 'request.method' DELETE is not accepted: records are never deleted "
                "by a push (send the resource with status 'entered-in-error' instead)",
                shown,
            ), None
        if method not in ("POST", "PUT"):
            return bad(
                "request.method",
                f"field 'request.method' must be POST or PUT, got {show_value(method)}",
                shown,
            ), None
    search = entry.get("search")
    if isinstance(search, dict) and search.get("mode") == "outcome":
        return None, None
    if resource is None:
        return bad("resource", "field 'resource' is required: the entry carries no resource"), None
    if resource_type == "OperationOutcome" or (
        bundle_type == "message" and resource_type == "MessageHeader"
    ):
        return None, None
    full_url = entry.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        return bad("fullUrl", "field 'fullUrl' must be a string", shown), None
    if not isinstance(resource, dict):
        return bad("resource", "field 'resource' must be a JSON object"), None
    return None, (full_url, resource)


def _id_from_uuid(uuid_text: str) -> str:
    """The id of an entry known only by its urn:uuid: the uuid itself (a valid FHIR id),
    so a redelivery of the same Bundle names the same resource."""
    text = uuid_text.lower()
    if RESOURCE_ID.fullmatch(text):
        return text
    return hashlib.sha256(text.encode()).hexdigest()[:64]


class _TooDeep(Exception):
    pass


_encoder = msgspec.json.Encoder()


def _plain(resource: dict) -> bool:
    """True when walking `resource` can change nothing and find nothing: no
    reference can point at an entry (every target is an urn: fullUrl, and its JSON
    has no '"urn:'), and it has fewer opening brackets than the nesting limit, so
    it cannot nest deeper. Encoding runs in C, far cheaper than the walk."""
    try:
        encoded = _encoder.encode(resource)
    except RecursionError:
        return False
    return b'"urn:' not in encoded and encoded.count(b"{") + encoded.count(b"[") <= _MAX_DEPTH


def _rewrite_references(node: Any, targets: dict[str, str], depth: int) -> Any:
    """A copy of `node` with each `reference` to another entry's urn: fullUrl replaced
    by that entry's "Type/id"."""
    if depth > _MAX_DEPTH:
        raise _TooDeep
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in targets:
                out[key] = targets[value]
            else:
                out[key] = _rewrite_references(value, targets, depth + 1)
        return out
    if isinstance(node, list):
        return [_rewrite_references(item, targets, depth + 1) for item in node]
    return node
