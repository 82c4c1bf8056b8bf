"""A hospital known to phr, and its webhook secrets (during a rotation the old
one stays live for a grace period)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain.errors import NotFound


class WebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    hospital_id: UUID
    key: bytes
    created_at: datetime
    # None while it is the current secret; set when a rotation retires it.
    retires_at: datetime | None


class Hospital(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    created_at: datetime
    city: str | None = None


class UnknownHospital(NotFound):
    kind = "hospital-not-found"
    title = "No hospital with this id"
