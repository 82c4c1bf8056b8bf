"""Patient accounts: who can sign in, under which email, and what their profile says."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from uuid import UUID

import msgspec

from domain.errors import FieldProblem, InvalidInput

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
MAX_DISPLAY_NAME_LENGTH = 200


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    display_name: str | None
    created_at: datetime
    email_verified: bool = True
    locale: str = "en"
    time_zone: str = "Asia/Shanghai"


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """What a login needs to know about an account; never leaves the domain."""

    patient_id: UUID
    password_hash: str
    email_verified: bool = True


class NewAccount(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    email: str
    display_name: str | None
    password_hash: str
    created_at: datetime
    email_verified_at: datetime | None = None
    locale: str = "en"
    time_zone: str = "Asia/Shanghai"


def normalise_email(raw: str) -> str:
    """Trimmed, NFC, domain lower-cased. The local part keeps its case as typed (it
    is shown back to the patient); look-ups and uniqueness ignore case anyway."""
    email = unicodedata.normalize("NFC", raw.strip())
    local, at, domain = email.rpartition("@")
    if not at:
        return email
    return f"{local}@{domain.lower()}"


def email_problem(email: str) -> str | None:
    """A light shape check: proof of ownership would need a confirmation mail."""
    if len(email) > MAX_EMAIL_LENGTH:
        return f"must be at most {MAX_EMAIL_LENGTH} characters long"
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return "must be an email address like name@example.org"
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in email):
        return "must not contain spaces or control characters"
    if "." not in domain.strip(".") or domain.startswith(".") or domain.endswith("."):
        return "must have a domain like example.org after the @"
    return None


def validated_email(raw: str) -> str:
    email = normalise_email(raw)
    problem = email_problem(email)
    if problem is not None:
        raise InvalidInput(
            "The email address is not valid.",
            errors=[FieldProblem(field="email", message=problem)],
        )
    return email


def validated_display_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", raw.strip())
    if not name:
        return None
    if len(name) > MAX_DISPLAY_NAME_LENGTH or any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput(
            "The display name is not valid.",
            errors=[
                FieldProblem(
                    field="displayName",
                    message=f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters "
                    "without control characters",
                )
            ],
        )
    return name
