"""What a share covers. A scope selects by resource type, category, hospital,
record id and a date range; an empty one means a patient summary in the spirit
of the International Patient Summary: problems, medications, allergies,
immunizations, results of the last 12 months, imaging and documents."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from domain.sharing.sensitivity import is_sensitive

SUMMARY_TYPES: tuple[str, ...] = (
    "AllergyIntolerance",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "ImagingStudy",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
)
# Results older than this are history, not the summary a doctor needs today.
SUMMARY_RESULT_TYPES = frozenset({"Observation", "DiagnosticReport"})
SUMMARY_RESULTS_WINDOW = timedelta(days=365)


class ShareScope(msgspec.Struct, frozen=True, rename="camel"):
    resource_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    hospital_ids: tuple[UUID, ...] = ()
    record_ids: tuple[UUID, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_sensitive: bool = False

    @property
    def is_summary(self) -> bool:
        return not (
            self.resource_types
            or self.categories
            or self.hospital_ids
            or self.record_ids
            or self.since
            or self.until
        )

    @property
    def types(self) -> tuple[str, ...]:
        """The resource types the share's consent covers."""
        return self.resource_types or (SUMMARY_TYPES if self.is_summary else ())


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """A record the store found for a scope, before the domain's rules decide."""

    id: UUID
    resource_type: str
    category: str | None
    hospital_id: UUID | None
    effective_at: datetime | None
    resource: dict[str, Any]
    # An uploaded file behind a DocumentReference / ImagingStudy, if any.
    file_key: str | None = None
    file_size: int | None = None
    file_content_type: str | None = None


def selects(scope: ShareScope, record: Candidate, now: datetime) -> bool:
    """Does the scope take this record? Sensitive records never, unless the
    patient opted in."""
    if not scope.include_sensitive and is_sensitive(record.resource):
        return False
    if scope.is_summary:
        if record.resource_type not in SUMMARY_TYPES:
            return False
        if record.resource_type in SUMMARY_RESULT_TYPES:
            return (
                record.effective_at is not None
                and record.effective_at >= now - SUMMARY_RESULTS_WINDOW
            )
        return True
    if scope.resource_types and record.resource_type not in scope.resource_types:
        return False
    if scope.categories and record.category not in scope.categories:
        return False
    if scope.hospital_ids and record.hospital_id not in scope.hospital_ids:
        return False
    if scope.record_ids and record.id not in scope.record_ids:
        return False
    if scope.since is not None or scope.until is not None:
        if record.effective_at is None:
            return False
        if scope.since is not None and record.effective_at < scope.since:
            return False
        if scope.until is not None and record.effective_at >= scope.until:
            return False
    return True


def select(scope: ShareScope, candidates: list[Candidate], now: datetime) -> list[Candidate]:
    return [record for record in candidates if selects(scope, record, now)]
