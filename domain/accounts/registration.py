"""Registration that tells nobody anything, and address verification.

`register` answers the same whether or not the address has an account: a new
address gets an account and a verification code, a known one a mail saying that
someone tried to register with it. The password is hashed on both paths, so the
two take the same time."""

from __future__ import annotations

from uuid import uuid4

from domain.accounts.account import (
    NewAccount,
    normalise_email,
    validated_display_name,
    validated_email,
)
from domain.accounts.flow_support import AccountPorts, code_refused, patient_event, with_patient
from domain.accounts.login_throttle import registration_key
from domain.accounts.mail_texts import account_mail
from domain.accounts.passwords import normalise_password
from domain.accounts.profile_rules import validated_locale, validated_time_zone
from domain.audit.events import RequestContext
from domain.errors import EmailAlreadyRegistered


class Registration:
    def __init__(self, ports: AccountPorts):
        self._ports = ports

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str | None,
        locale: str,
        time_zone: str,
        context: RequestContext,
    ) -> None:
        ports = self._ports
        email = validated_email(email)
        name = validated_display_name(display_name)
        locale = validated_locale(locale)
        time_zone = validated_time_zone(time_zone)
        ports.check_new_password(password, email=email, field="password")
        event = patient_event("account.created", None, context)
        # Besides the mail limits, each registration costs a hash: a per-address
        # hourly cap too.
        await ports.limit_request(
            "register",
            email,
            event,
            also=[registration_key(ports.sign_in, context.client_address)],
        )
        password_hash = await ports.hasher.hash(normalise_password(password))
        now = ports.clock.now()
        patient_id = uuid4()
        async with ports.unit_of_work() as uow:
            existing = await ports.accounts.find(email)
            if existing is None:
                try:
                    account = await ports.accounts.add(
                        NewAccount(
                            id=patient_id,
                            email=email,
                            display_name=name,
                            password_hash=password_hash,
                            created_at=now,
                            email_verified_at=None if ports.verification_required else now,
                            locale=locale,
                            time_zone=time_zone,
                        )
                    )
                except EmailAlreadyRegistered:
                    # Lost a race with a parallel registration of the same address.
                    existing = await ports.accounts.find(email)
                else:
                    if ports.verification_required:
                        await ports.queue(await ports.issue_code(account, "verify-email"))
                    await ports.audit.append(
                        patient_event("account.created", patient_id, context).with_resources(
                            "Patient", str(patient_id)
                        )
                    )
            if existing is not None:
                await ports.queue(
                    account_mail("registration-attempt", to=existing.email, locale=existing.locale)
                )
                await ports.audit.append(
                    with_patient(event, existing.id).refused("email-registered")
                )
            await uow.commit()
        ports.deliver_soon()

    async def verify_email(self, *, email: str, code: str, context: RequestContext) -> None:
        ports = self._ports
        email = normalise_email(email)
        event = patient_event("account.verified", None, context)
        attempt = await ports.begin_code_check(email, event)
        async with ports.unit_of_work() as uow:
            account = await ports.accounts.find(email)
            if account is not None:
                event = with_patient(event, account.id)
            stored, event = await ports.take_code(
                account.id if account else None, "verify-email", code, event
            )
            if stored is not None and account is not None:
                await ports.accounts.mark_verified(account.id, ports.clock.now())
            await ports.audit.append(event)
            await uow.commit()
        if stored is None:
            raise code_refused()
        await ports.code_was_right(attempt)

    async def resend(self, *, email: str, context: RequestContext) -> None:
        """202 whatever happens: a code goes out only to an unverified account."""
        ports = self._ports
        email = normalise_email(email)
        event = patient_event("account.verification-sent", None, context)
        await ports.limit_request("verify", email, event)
        async with ports.unit_of_work() as uow:
            account = await ports.accounts.find(email)
            if account is not None and not account.email_verified:
                await ports.queue(await ports.issue_code(account, "verify-email"))
                await ports.audit.append(with_patient(event, account.id))
            await uow.commit()
        ports.deliver_soon()
