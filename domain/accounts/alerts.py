"""Telling an account's owner about something they did not do themselves (the
port; re-exported by domain.ports)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class AccountAlerts(Protocol):
    """Telling an account's owner about something they did not do themselves."""

    async def sign_in_under_attack(self, patient_id: UUID, failures: int) -> None:
        """Failed sign-ins on the account reached the alert threshold. Sent at most
        once per throttle window; must not fail the sign-in it is raised from."""
        ...
