"""Throttling, one mechanism for every guessable thing: sign-in, registration,
refresh tokens, and every code check (link codes, and the mailed codes of the
account flows).

A throttle counts attempts under keys. Each key is a (scope, subject) pair with its
own limit and sliding window; an attempt is admitted only if every key it names is
under its limit, and then it is recorded under all of them, in one atomic step (so
parallel attempts cannot all slip under a limit). An attempt that turns out not to
be a failure is forgotten again. Subjects are hashes: the table holds no email,
code or address in clear."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

# A key that only counts (its count feeds a decision) and never refuses by itself.
UNLIMITED = 2**31 - 1


class ThrottleKey(msgspec.Struct, frozen=True):
    scope: str
    subject: str
    limit: int
    window_seconds: int
    # False: the key is read (for the gate) but the attempt is not counted under it.
    record: bool = True


class KeyCount(msgspec.Struct, frozen=True):
    """A key's attempts inside its window before this one, and the latest of them."""

    attempts: int
    latest: datetime | None


class ThrottleTicket(msgspec.Struct, frozen=True):
    """The rows an admitted attempt left; forgetting the ticket removes them."""

    attempt_ids: tuple[int, ...]


# Called under the keys' locks with every key's count; raises RateLimited to refuse.
Gate = Callable[[Mapping[tuple[str, str], KeyCount]], None]


# The port (re-exported by domain.ports), beside the rules it counts by.
class Throttle(Protocol):
    """One mechanism for every guessable thing (see domain.throttle)."""

    async def admit(
        self, keys: Sequence[ThrottleKey], *, now: datetime, gate: Gate | None = None
    ) -> ThrottleTicket:
        """Raises RateLimited when a key is at its limit (Retry-After: until its
        oldest counted attempt leaves the window) or the gate refuses; otherwise
        records the attempt under every recording key. Joins the caller's unit of
        work when there is one: the count is then exact for as long as it is open."""
        ...

    async def forget(
        self, ticket: ThrottleTicket, *, clear: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Removes the ticket's rows, and every attempt under the `clear` keys."""
        ...


def subject(*parts: str) -> str:
    """A key's subject: a hash of what it is about (an email, an address, a
    hospital), so the throttle table says nothing about anyone."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
