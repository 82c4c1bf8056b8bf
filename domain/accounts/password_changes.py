"""A forgotten password reset by a mailed code, and a known one changed.

Both end sessions: a reset ends every session (whoever knew the old password is
out), a change every session but the one making it. Both send a "your password
was changed" mail, so a patient learns of a change they did not make."""

from __future__ import annotations

from uuid import UUID

from domain.accounts.account import normalise_email
from domain.accounts.flow_support import AccountPorts, code_refused, patient_event, with_patient
from domain.accounts.mail_texts import account_mail
from domain.accounts.passwords import normalise_password
from domain.audit.events import RequestContext
from domain.errors import NotFound


class PasswordChanges:
    def __init__(self, ports: AccountPorts):
        self._ports = ports

    async def request_reset(self, *, email: str, context: RequestContext) -> None:
        """202 whatever happens: only a known address gets a code."""
        ports = self._ports
        email = normalise_email(email)
        event = patient_event("password.reset-requested", None, context)
        await ports.limit_request("reset", email, event)
        async with ports.unit_of_work() as uow:
            account = await ports.accounts.find(email)
            if account is not None:
                await ports.queue(await ports.issue_code(account, "password-reset"))
                await ports.audit.append(with_patient(event, account.id))
            await uow.commit()
        ports.deliver_soon()

    async def confirm_reset(
        self, *, email: str, code: str, new_password: str, context: RequestContext
    ) -> None:
        ports = self._ports
        email = normalise_email(email)
        ports.check_new_password(new_password, email=email, field="newPassword")
        event = patient_event("password.changed", None, context)
        attempt = await ports.begin_code_check(email, event)
        # Hashed before the code is checked, so the work (and time) is the same for
        # a right and a wrong code; the throttle above bounds how often.
        new_hash = await ports.hasher.hash(normalise_password(new_password))
        async with ports.unit_of_work() as uow:
            account = await ports.accounts.find(email)
            if account is not None:
                event = with_patient(event, account.id)
            stored, event = await ports.take_code(
                account.id if account else None, "password-reset", code, event
            )
            if stored is not None and account is not None:
                now = ports.clock.now()
                await ports.accounts.set_password_hash(account.id, new_hash, now)
                # The code came through the mailbox: the address is proven too.
                await ports.accounts.mark_verified(account.id, now)
                await ports.sessions.revoke_all(account.id, now, "password-reset")
                event = event.with_resources("Patient", str(account.id))
                await ports.queue(
                    account_mail("password-changed", to=account.email, locale=account.locale)
                )
            await ports.audit.append(event)
            await uow.commit()
        if stored is None:
            raise code_refused()
        await ports.code_was_right(attempt)
        ports.deliver_soon()

    async def change(
        self,
        patient_id: UUID,
        *,
        current_password: str,
        new_password: str,
        current_session: UUID | None,
        context: RequestContext,
    ) -> None:
        ports = self._ports
        account = await ports.accounts.get(patient_id)
        if account is None:
            raise NotFound("No such account.")
        ports.check_new_password(new_password, email=account.email, field="newPassword")
        event = patient_event("password.changed", patient_id, context).with_resources(
            "Patient", str(patient_id)
        )
        await ports.check_current_password(account, current_password, event)
        new_hash = await ports.hasher.hash(normalise_password(new_password))
        async with ports.unit_of_work() as uow:
            now = ports.clock.now()
            await ports.accounts.set_password_hash(patient_id, new_hash, now)
            await ports.sessions.revoke_all(
                patient_id, now, "password-changed", keep=current_session
            )
            await ports.audit.append(event)
            await ports.queue(
                account_mail("password-changed", to=account.email, locale=account.locale)
            )
            await uow.commit()
        ports.deliver_soon()
