"""One-time codes mailed to a patient: verifying an address, resetting a password,
confirming a new address.

A code is 8 characters of Crockford's base32 alphabet (40 bits), lives 30 minutes
and dies after 5 wrong guesses; per-address and per-email throttling bounds the
guessing across codes. Only a keyed HMAC of the code is stored, and the check
compares digests in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec

from domain.errors import InvalidInput

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=30)
CODE_ATTEMPTS = 5

CodePurpose = Literal["verify-email", "password-reset", "email-change"]

# Crockford decoding: case-insensitive, I and L read as 1, O as 0; hyphens and
# spaces (as a patient may type them) are ignored.
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


class CodeRefused(InvalidInput):
    """Wrong, expired, used up or never issued: one error, so a caller learns
    nothing about which (or whether the address has an account)."""

    kind = "invalid-code"
    title = "The code is not valid"


def new_code() -> str:
    return "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """ABCD-EFGH: easier to read aloud and to copy from a notification."""
    return f"{code[:4]}-{code[4:]}"


def normalise_code(text: str) -> str | None:
    code = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    if len(code) != CODE_LENGTH or any(ch not in CROCKFORD_ALPHABET for ch in code):
        return None
    return code


def code_digest(key: bytes, patient_id: UUID, purpose: str, code: str) -> bytes:
    """Bound to the account and purpose: a reset code never verifies an address."""
    message = patient_id.bytes + purpose.encode() + b"\x00" + code.encode()
    return hmac.new(key, message, hashlib.sha256).digest()


class StoredCode(msgspec.Struct, frozen=True, kw_only=True):
    patient_id: UUID
    purpose: str
    digest: bytes
    new_email: str | None
    expires_at: datetime
    attempts: int
    used_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now and self.attempts < CODE_ATTEMPTS


def code_matches(stored: StoredCode, key: bytes, presented: str | None) -> bool:
    """Constant-time: the comparison takes as long for a near miss as for a far one.
    An unparsable code is compared too (against a digest of nothing useful)."""
    candidate = code_digest(key, stored.patient_id, stored.purpose, presented or "")
    return hmac.compare_digest(candidate, stored.digest) and presented is not None
