"""Consents: the patient's decisions about who may do what with their record.

A consent is a row with a kind, a grantee, a scope, a period and a status. It is
never deleted: revoking archives it (status and time), so the history of what a
patient allowed, and when, stays readable."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

ConsentKind = Literal["data-source", "share"]
ConsentStatus = Literal["active", "revoked", "expired"]


class ConsentScope(msgspec.Struct, frozen=True, rename="camel"):
    """What a consent covers. `resource_types` empty means every type."""

    resource_types: tuple[str, ...] = ()


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    patient_id: UUID
    kind: ConsentKind
    grantee_type: Literal["hospital", "share"]
    grantee_id: str
    scope: ConsentScope
    period_start: datetime
    period_end: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    def status_at(self, now: datetime) -> ConsentStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.period_end is not None and now >= self.period_end:
            return "expired"
        return "active"
