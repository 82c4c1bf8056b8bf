"""Account alerts until the mailer delivers them: a warning line an operator's log
monitoring can pick up. It names the account by id only (no email, no address)."""

from __future__ import annotations

import logging
from uuid import UUID

log = logging.getLogger("phr.account_alerts")


class LoggedAccountAlerts:
    async def sign_in_under_attack(self, patient_id: UUID, failures: int) -> None:
        log.warning(
            "failed sign-ins on an account reached the alert threshold",
            extra={"patientId": str(patient_id), "failures": failures},
        )
