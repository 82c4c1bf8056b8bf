"""What an erasure leaves so that nothing of the patient comes back: a tombstone
per (hospital, patientRef), and a second sweep of the patient's files once every
upload URL issued before the erasure has expired."""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

from domain.errors import DomainError


class Gone(DomainError):
    kind = "gone"
    title = "No longer here"


class PatientRefErased(Gone):
    """A hospital pushed for a patientRef whose patient erased their account."""

    kind = "patient-erased"
    title = "The patient behind this patientRef has erased their account"


def erased_ref_digest(key: bytes, hospital_id: UUID, patient_ref: str) -> bytes:
    """The tombstone's name for a hospital's patientRef: keyed (the key lives
    outside the database), so the table says nothing about which MRNs were erased."""
    return hmac.new(
        key, b"erased:" + hospital_id.bytes + patient_ref.encode(), hashlib.sha256
    ).digest()
