"""The hospital directory: the hospitals registered with phr, for the app's picker
before a patient links one. Names and cities only: nothing about patients, except
whether the asking patient has linked each one."""

from __future__ import annotations

import unicodedata
from uuid import UUID

import msgspec

from domain.errors import FieldProblem, InvalidInput

MAX_QUERY_LENGTH = 100


class DirectoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    city: str | None
    linked: bool


class DirectoryCursor(msgspec.Struct, frozen=True, array_like=True):
    """Keyset position: the last entry's (name, id)."""

    name: str
    id: UUID


class DirectoryQuery(msgspec.Struct, frozen=True, kw_only=True):
    text: str | None
    after: DirectoryCursor | None
    limit: int


def validated_search_text(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise InvalidInput(
            "q contains control characters.",
            errors=[FieldProblem("q", "control characters are not allowed")],
        )
    return text[:MAX_QUERY_LENGTH] or None
