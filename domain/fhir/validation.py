"""Validation of one FHIR resource: its type, id, elements and choice elements,
with errors that name the entry and field. `InvalidFhir` is the only exception
that leaves `validate_resource`, whatever the input."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from domain.errors import FieldProblem, InvalidInput, split_validation_error
from domain.fhir import datatypes as t
from domain.fhir import resources as r
from domain.fhir.catalogue import ALLOWED_TYPES, R4_RESOURCE_TYPES, RESOURCE_ID
from domain.fhir.index import IndexedFields, index_fields

_encoder = msgspec.json.Encoder()


class EntryProblem(msgspec.Struct, frozen=True):
    """One bad field in one entry. `field` is relative to the resource, or to the
    entry when `scope` is "entry", or to the Bundle when "bundle"."""

    entry_index: int | None
    resource_type: str | None
    field: str
    message: str
    scope: str = "resource"

    @property
    def path(self) -> str:
        """Where the problem is in the request body, e.g. bundle.entry[3].resource.status."""
        if self.scope == "bundle":
            return "bundle" + (f".{self.field}" if self.field else "")
        if self.entry_index is None:
            return self.field or "resource"
        entry = f"bundle.entry[{self.entry_index}]"
        if self.scope == "entry":
            return entry + (f".{self.field}" if self.field else "")
        return entry + ".resource" + (f".{self.field}" if self.field else "")

    @property
    def sentence(self) -> str:
        where = self.resource_type or "resource"
        if self.scope == "bundle":
            return f"bundle: {self.message}"
        if self.entry_index is None:
            return f"{where}: {self.message}"
        return f"entry {self.entry_index} ({where}): {self.message}"


class InvalidFhir(InvalidInput):
    """A resource or Bundle phr will not store; `problems` names every bad entry."""

    kind = "invalid-fhir"
    title = "The FHIR content is not valid"

    def __init__(self, problems: list[EntryProblem]):
        self.problems = list(problems)
        first = self.problems[0].sentence if self.problems else self.title
        more = len(self.problems) - 1
        detail = first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        super().__init__(
            detail,
            errors=[FieldProblem(field=p.path, message=p.message) for p in self.problems],
        )


# --- single resources ---------------------------------------------------------------


def validate_resource(resource: dict, *, entry_index: int | None = None) -> IndexedFields:
    """Check one resource and return its indexed fields; raises InvalidFhir."""
    typed = _check(resource, entry_index)
    if b"\\u0000" in _encoder.encode(resource):
        # PostgreSQL text and JSONB cannot hold a NUL character, and no FHIR
        # string may contain one (FHIR strings exclude control characters).
        raise _problem(
            entry_index,
            typed.resource_type,
            "",
            "a string in the resource contains a NUL character",
        )
    return index_fields(typed, resource)


def _problem(
    entry_index: int | None, resource_type: str | None, field: str, message: str
) -> InvalidFhir:
    return InvalidFhir([EntryProblem(entry_index, resource_type, field, message)])


def _check(resource: Any, entry_index: int | None) -> r.Resource:
    if not isinstance(resource, dict):
        raise _problem(entry_index, None, "", "the resource must be a JSON object")
    resource_type = resource.get("resourceType")
    if resource_type is None:
        raise _problem(entry_index, None, "resourceType", "field 'resourceType' is required")
    if not isinstance(resource_type, str):
        raise _problem(entry_index, None, "resourceType", "field 'resourceType' must be a string")
    shown_type = resource_type if resource_type in R4_RESOURCE_TYPES else None
    if resource_type not in R4_RESOURCE_TYPES:
        raise _problem(
            entry_index,
            None,
            "resourceType",
            f"field 'resourceType' is not a FHIR R4 resource type: {show_value(resource_type)}",
        )
    if resource_type not in ALLOWED_TYPES:
        raise _problem(
            entry_index,
            shown_type,
            "resourceType",
            f"field 'resourceType' {resource_type!r} is not patient data "
            "(only types in the R4 Patient compartment and the resources they refer to)",
        )
    if "id" in resource:
        rid = resource["id"]
        if not isinstance(rid, str) or not RESOURCE_ID.fullmatch(rid):
            raise _problem(
                entry_index,
                resource_type,
                "id",
                "field 'id' must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.', "
                f"got {show_value(rid)}",
            )
    shape = r.VALIDATED.get(resource_type, r.Resource)
    try:
        typed = msgspec.convert(resource, shape, dec_hook=t.decode_fhir_scalar)
    except msgspec.ValidationError as exc:
        field, message = _explain(str(exc), shape)
        raise _problem(entry_index, resource_type, field, message) from None
    problems = [
        EntryProblem(entry_index, resource_type, field, message)
        for field, message in _choice_problems(resource, shape.CHOICES)
    ]
    if problems:
        raise InvalidFhir(problems)
    return typed


def _choice_problems(resource: dict, choices: dict[str, bool]) -> list[tuple[str, str]]:
    """At most one variant of each choice element, and one where R4 requires it."""
    found: list[tuple[str, str]] = []
    for base, required in choices.items():
        present = sorted(
            key
            for key in resource
            if isinstance(key, str)
            and key.startswith(base)
            and len(key) > len(base)
            and key[len(base)].isupper()
        )
        if len(present) > 1:
            found.append((present[1], f"only one of {', '.join(present)} may be given ({base}[x])"))
        elif required and not present:
            found.append((f"{base}[x]", f"field '{base}[x]' is required"))
    return found


_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_EXPECTED = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")
_ENUM = re.compile(r"Invalid enum value (?P<value>.+)")
_ARRAY_LEN = re.compile(r"Expected `array` of length >= (?P<n>\d+)")
_TYPE_WORDS = {
    "str": "a string",
    "float": "a number",
    "int": "an integer",
    "bool": "a boolean",
    "array": "an array",
    "object": "an object",
}


def _explain(error: str, shape: type) -> tuple[str, str]:
    """Turn a msgspec ValidationError message into (field path, sentence)."""
    message, path = split_validation_error(error)
    if missing := _MISSING.fullmatch(message):
        field = f"{path}.{missing['name']}" if path else missing["name"]
        return field, f"field '{field}' is required"
    field = path or "resource"
    if expected := _EXPECTED.fullmatch(message):
        wants = [
            _TYPE_WORDS.get(w.strip(), w.strip())
            for w in expected["want"].split("|")
            if w.strip() != "null"
        ]
        got = _TYPE_WORDS.get(expected["got"], expected["got"])
        return field, f"field '{field}' must be {' or '.join(wants)}, got {got}"
    if enum := _ENUM.fullmatch(message):
        allowed = _allowed_codes(shape, path)
        tail = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return field, f"field '{field}' has an invalid code {enum['value']}{tail}"
    if length := _ARRAY_LEN.fullmatch(message):
        return field, f"field '{field}' needs at least {length['n']} item(s)"
    return field, f"field '{field}' {message}"


def _allowed_codes(shape: type, path: str) -> list[str]:
    """The Literal values declared at `path` of `shape`, for the error message."""
    info: Any = msgspec.inspect.type_info(shape)
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        info = _unwrap(info)
        if part.startswith("["):
            if isinstance(info, msgspec.inspect.ListType):
                info = info.item_type
                continue
            return []
        if not isinstance(info, msgspec.inspect.StructType):
            return []
        info = next((f.type for f in info.fields if f.encode_name == part), None)
        if info is None:
            return []
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.ListType):
        info = _unwrap(info.item_type)
    if isinstance(info, msgspec.inspect.LiteralType):
        return [str(v) for v in info.values]
    return []


def _unwrap(info: Any) -> Any:
    if isinstance(info, msgspec.inspect.UnionType):
        rest = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(rest) == 1:
            return rest[0]
    if isinstance(info, msgspec.inspect.Metadata):
        return _unwrap(info.type)
    return info


def show_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
