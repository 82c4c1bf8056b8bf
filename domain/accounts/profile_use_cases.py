"""The patient's own account: profile (name, language, time zone), a change of
email address proven by a code sent to the new one, and erasure behind the
current password."""

from __future__ import annotations

from uuid import UUID

import msgspec

from domain.access import PatientActor
from domain.accounts.account import Account, validated_display_name, validated_email
from domain.accounts.flow_support import AccountPorts, code_refused, patient_event
from domain.accounts.mail_texts import account_mail
from domain.accounts.profile_rules import validated_locale, validated_time_zone
from domain.accounts.use_cases import AccountErasure
from domain.audit.events import RequestContext
from domain.errors import NotFound


class ProfileChanges:
    def __init__(self, ports: AccountPorts, erasure: AccountErasure):
        self._ports = ports
        self._erasure = erasure

    async def _account(self, patient_id: UUID) -> Account:
        account = await self._ports.accounts.get(patient_id)
        if account is None:
            raise NotFound("No such account.")
        return account

    async def update(
        self,
        patient_id: UUID,
        *,
        display_name: str | msgspec.UnsetType | None = msgspec.UNSET,
        locale: str | msgspec.UnsetType = msgspec.UNSET,
        time_zone: str | msgspec.UnsetType = msgspec.UNSET,
        context: RequestContext,
    ) -> Account:
        """Only the fields given change; a null display name clears it."""
        ports = self._ports
        async with ports.unit_of_work() as uow:
            account = await self._account(patient_id)
            updated = await ports.accounts.update_profile(
                patient_id,
                display_name=account.display_name
                if display_name is msgspec.UNSET
                else validated_display_name(display_name),
                locale=account.locale if locale is msgspec.UNSET else validated_locale(locale),
                time_zone=account.time_zone
                if time_zone is msgspec.UNSET
                else validated_time_zone(time_zone),
            )
            if updated is None:
                raise NotFound("No such account.")
            await ports.audit.append(
                patient_event("account.updated", patient_id, context).with_resources(
                    "Patient", str(patient_id)
                )
            )
            await uow.commit()
        return updated

    async def request_email_change(
        self, patient_id: UUID, *, new_email: str, current_password: str, context: RequestContext
    ) -> None:
        """A code goes to the new address; nothing changes until it comes back.
        An address another account uses gets nothing, and the answer is the same."""
        ports = self._ports
        new_email = validated_email(new_email)
        account = await self._account(patient_id)
        event = patient_event("account.email-change-requested", patient_id, context)
        await ports.check_current_password(account, current_password, event)
        await ports.limit_request("email-change", new_email, event)
        async with ports.unit_of_work() as uow:
            taken = await ports.accounts.find(new_email)
            if taken is None:
                await ports.queue(
                    await ports.issue_code(
                        account, "email-change", to=new_email, new_email=new_email
                    )
                )
                await ports.audit.append(event)
            else:
                await ports.audit.append(event.refused("email-registered"))
            await uow.commit()
        ports.deliver_soon()

    async def confirm_email_change(
        self, patient_id: UUID, *, code: str, context: RequestContext
    ) -> Account:
        ports = self._ports
        account = await self._account(patient_id)
        event = patient_event("account.email-changed", patient_id, context).with_resources(
            "Patient", str(patient_id)
        )
        attempt = await ports.begin_code_check(account.email, event)
        async with ports.unit_of_work() as uow:
            stored, event = await ports.take_code(patient_id, "email-change", code, event)
            if stored is not None and stored.new_email:
                await ports.accounts.change_email(patient_id, stored.new_email, ports.clock.now())
                # The old address hears of it: a thief with a session cannot move
                # the account quietly.
                await ports.queue(
                    account_mail("email-changed", to=account.email, locale=account.locale)
                )
            await ports.audit.append(event)
            await uow.commit()
        if stored is None or not stored.new_email:
            raise code_refused()
        await ports.code_was_right(attempt)
        ports.deliver_soon()
        return await self._account(patient_id)

    async def erase(self, patient_id: UUID, *, password: str, context: RequestContext) -> None:
        """The current password first: a token left on a borrowed phone is not
        enough to delete a health record."""
        account = await self._account(patient_id)
        event = patient_event("account.erased", patient_id, context).with_resources(
            "Patient", str(patient_id)
        )
        await self._ports.check_current_password(account, password, event)
        await self._erasure.erase(PatientActor(patient_id), context=context)
