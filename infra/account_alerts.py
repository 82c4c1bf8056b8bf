"""Account alerts: a mail to the account's owner, in their language, queued as a
`mail.send` job like every account mail (so it is sent, retried, and never lost
to a crash between the decision and the send). The log line stays, for an
operator's monitoring; it names the account by id only (no email, no address)."""

from __future__ import annotations

import logging
from uuid import UUID

from domain.accounts.mail_texts import account_mail
from domain.ports import AccountStore, MailOutbox, UnitOfWorkFactory

log = logging.getLogger("phr.account_alerts")


class MailedAccountAlerts:
    def __init__(self, accounts: AccountStore, outbox: MailOutbox, unit_of_work: UnitOfWorkFactory):
        self._accounts = accounts
        self._outbox = outbox
        self._unit_of_work = unit_of_work

    async def sign_in_under_attack(self, patient_id: UUID, failures: int) -> None:
        log.warning(
            "failed sign-ins on an account reached the alert threshold",
            extra={"patientId": str(patient_id), "failures": failures},
        )
        async with self._unit_of_work() as uow:
            account = await self._accounts.get(patient_id)
            if account is None:  # erased meanwhile: nobody left to tell
                return
            await self._outbox.post(
                account_mail("sign-in-attack", to=account.email, locale=account.locale)
            )
            await uow.commit()
        self._outbox.deliver_soon()
