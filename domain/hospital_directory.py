"""The hospital directory: the hospitals registered with phr, for the app's picker
before a patient links one. Names and cities only: nothing about patients, except
whether the asking patient has linked each one."""

from __future__ import annotations

import unicodedata
from typing import Protocol
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


class HospitalNames(Protocol):
    async def search(self, patient_id: UUID, query: DirectoryQuery) -> list[DirectoryEntry]:
        """Entries whose name or city contains the text (any script, any case),
        ordered by (name, id), after the cursor."""
        ...

    async def names(self, hospital_ids: list[UUID]) -> dict[UUID, str]: ...


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


class HospitalDirectory:
    def __init__(self, names: HospitalNames):
        self._names = names

    async def search(
        self, patient_id: UUID, *, text: str | None, after: DirectoryCursor | None, limit: int
    ) -> list[DirectoryEntry]:
        """Returns up to `limit + 1` entries: one more than a page says there is
        a next page."""
        query = DirectoryQuery(text=validated_search_text(text), after=after, limit=limit + 1)
        return await self._names.search(patient_id, query)
