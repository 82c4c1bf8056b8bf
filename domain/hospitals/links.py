"""A patient's link to a hospital: pending until the hospital's system confirms
the code with its own patient identifier (MRN, `patientRef`), then linked,
until the patient revokes it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from domain.errors import Conflict, Forbidden, InvalidInput, NotFound

LinkStatus = Literal["pending", "linked", "expired", "revoked"]


class Link(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    hospital_id: UUID
    consent_id: UUID
    expires_at: datetime
    created_at: datetime
    patient_ref: str | None
    linked_at: datetime | None
    # The data-source consent's revocation: revoking the consent (here or under
    # /v1/consents) is what revokes the link.
    revoked_at: datetime | None

    def status_at(self, now: datetime) -> LinkStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.linked_at is not None:
            return "linked"
        if now >= self.expires_at:
            return "expired"
        return "pending"


class LinkNotFound(NotFound):
    kind = "link-not-found"
    title = "No link with this id"


class LinkNotPending(Conflict):
    kind = "link-not-pending"
    title = "The link is no longer waiting for its code"


class LinkCodeInvalid(InvalidInput):
    """Unknown, mistyped, or meant for another hospital."""

    kind = "link-code-invalid"
    title = "The link code is not valid"


class LinkCodeExpired(InvalidInput):
    kind = "link-code-expired"
    title = "The link code has expired"


class LinkCodeUsed(InvalidInput):
    kind = "link-code-used"
    title = "The link code has already been used"


class PatientRefTaken(Conflict):
    kind = "patient-ref-taken"
    title = "This patientRef is already linked to another patient"


class LinkRevoked(Forbidden):
    """The patient revoked this hospital's link: its pushes are refused."""

    kind = "link-revoked"
    title = "The patient has revoked this hospital's link"
