"""Link codes: the one-time code a patient reads out or types at a hospital."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from uuid import UUID

# Crockford base32: no I, L, O, U, so a code read out loud or typed survives.
LINK_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LINK_CODE_LENGTH = 8  # 40 bits
LINK_CODE_TTL = timedelta(hours=24)
_CROCKFORD_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_link_code() -> str:
    return "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(LINK_CODE_LENGTH))


def format_link_code(code: str) -> str:
    """XXXX-XXXX, the way it is shown to the patient."""
    return f"{code[:4]}-{code[4:]}"


def normalise_link_code(text: str) -> str | None:
    """The canonical code for what someone typed: case-insensitive, hyphens and
    spaces ignored, I/L read as 1 and O as 0. None if it cannot be a code."""
    cleaned = "".join(text.split()).replace("-", "").upper().translate(_CROCKFORD_ALIASES)
    if len(cleaned) != LINK_CODE_LENGTH or any(ch not in LINK_CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def link_code_digest(key: bytes, hospital_id: UUID, code: str) -> bytes:
    """What is stored and looked up instead of the code. Keyed (the key lives
    outside the database), so a dump cannot be searched for the 2^40 codes."""
    return hmac.new(key, hospital_id.bytes + code.encode(), hashlib.sha256).digest()
