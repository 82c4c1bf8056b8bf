"""Login throttling (OWASP ASVS 2.2.1): limit guesses per account and per client
address, so one attacker cannot grind one password, nor spray many accounts from one
place. Counting lives in the database so it holds across every API process."""

from __future__ import annotations

import hashlib

import msgspec


class ThrottlePolicy(msgspec.Struct, frozen=True, kw_only=True):
    account_failures: int = 5
    address_failures: int = 50
    window_seconds: int = 15 * 60


class LoginAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """Counted as a failure unless it is released."""

    account_key: str
    address_key: str
    attempt_ids: tuple[int, ...]


def account_key(email: str) -> str:
    """The throttle's name for an account: a hash, so the table holds no email, and
    the same for existing and unknown accounts."""
    return hashlib.sha256(email.casefold().encode()).hexdigest()
