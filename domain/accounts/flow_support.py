"""What the account flows (registration, password changes, profile) share: the
stores and ports they use, mailed codes, throttling of requests and code guesses,
and the check of a signed-in patient's current password."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec

from domain.accounts.account import Account
from domain.accounts.codes import (
    CODE_TTL,
    CodePurpose,
    CodeRefused,
    code_digest,
    code_matches,
    format_code,
    new_code,
    normalise_code,
)
from domain.accounts.flow_throttle import AccountFlowLimits, code_check_keys, mail_request_keys
from domain.accounts.login_throttle import SignInPolicy, progressive_delay, sign_in_keys
from domain.accounts.mail_texts import account_mail
from domain.accounts.passwords import PasswordPolicy, normalise_password
from domain.audit.events import AuditEvent, RequestContext
from domain.errors import FieldProblem, Forbidden, Overloaded, RateLimited, WeakPassword
from domain.mail import MailMessage
from domain.ports import (
    AccountCodeStore,
    AccountStore,
    AuditLog,
    Clock,
    MailOutbox,
    PasswordHasher,
    RefreshTokenStore,
    Throttle,
    UnitOfWorkFactory,
)
from domain.throttle import ThrottleKey, ThrottleTicket


class WrongPassword(Forbidden):
    """The signed-in patient's current password is not right."""

    kind = "wrong-password"
    title = "The current password is not correct"


class EmailNotVerified(Forbidden):
    kind = "email-not-verified"
    title = "The email address is not verified yet"


class AccountPorts:
    """Everything the account flows need, wired once in the composition root."""

    def __init__(
        self,
        *,
        accounts: AccountStore,
        codes: AccountCodeStore,
        code_key: bytes,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        sessions: RefreshTokenStore,
        outbox: MailOutbox,
        throttle: Throttle,
        limits: AccountFlowLimits,
        sign_in: SignInPolicy,
        audit: AuditLog,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        verification_required: bool,
    ):
        self.accounts = accounts
        self.codes = codes
        self.code_key = code_key
        self.hasher = hasher
        self.policy = policy
        self.sessions = sessions
        self.outbox = outbox
        self.throttle = throttle
        self.limits = limits
        self.sign_in = sign_in
        self.audit = audit
        self.unit_of_work = unit_of_work
        self.clock = clock
        self.verification_required = verification_required

    def check_new_password(self, password: str, *, email: str, field: str) -> None:
        reason = self.policy.problem(password, email=email)
        if reason is not None:
            raise WeakPassword(
                "Choose another password: " + reason + ".",
                errors=[FieldProblem(field=field, message=reason)],
            )

    async def record(self, event: AuditEvent) -> None:
        async with self.unit_of_work() as uow:
            await self.audit.append(event)
            await uow.commit()

    async def limit_request(
        self, flow: str, email: str, event: AuditEvent, *, also: Sequence[ThrottleKey] = ()
    ) -> None:
        """Every request that sends mail counts, per email and per client address:
        nobody can flood an inbox or probe many addresses from one place."""
        address = event.context.client_address
        try:
            await self.throttle.admit(
                [*mail_request_keys(self.limits, flow, email, address), *also],
                now=self.clock.now(),
            )
        except RateLimited as exc:
            await self.record(event.refused("throttled"))
            raise _rephrased(
                exc, "Too many requests for this address; wait before trying again."
            ) from None

    async def issue_code(
        self,
        account: Account,
        purpose: CodePurpose,
        *,
        to: str | None = None,
        new_email: str | None = None,
    ) -> MailMessage:
        """Stores a new code (inside the caller's transaction) and returns the mail
        that carries it, to be queued in the same transaction."""
        code = new_code()
        now = self.clock.now()
        await self.codes.replace(
            patient_id=account.id,
            purpose=purpose,
            digest=code_digest(self.code_key, account.id, purpose, code),
            new_email=new_email,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
        return account_mail(
            purpose,
            to=to or account.email,
            locale=account.locale,
            code=format_code(code),
            minutes=int(CODE_TTL.total_seconds() // 60),
        )

    async def begin_code_check(self, email: str, event: AuditEvent) -> ThrottleTicket:
        """Wrong codes count per email and per client address, across codes: five
        guesses per code, and no more than the throttle allows in a window. The
        caller forgets the ticket (`code_was_right`) when the code was right."""
        try:
            return await self.throttle.admit(
                code_check_keys(self.limits, email, event.context.client_address),
                now=self.clock.now(),
            )
        except RateLimited as exc:
            await self.record(event.refused("throttled"))
            raise _rephrased(exc, "Too many wrong codes; wait before trying again.") from None

    async def take_code(
        self, patient_id: UUID | None, purpose: CodePurpose, presented: str, event: AuditEvent
    ):
        """Inside the caller's transaction: the stored code if `presented` is right
        (and then spent); otherwise the failure is counted and audited, and
        CodeRefused raised once the caller's transaction commits that."""
        now = self.clock.now()
        stored = await self.codes.lock(patient_id, purpose) if patient_id else None
        normalised = normalise_code(presented)
        if stored is None or not stored.usable_at(now):
            return None, event.refused("no-usable-code")
        if not code_matches(stored, self.code_key, normalised):
            await self.codes.count_failure(stored.patient_id, purpose)
            return None, event.failed("wrong-code")
        await self.codes.use(stored.patient_id, purpose, now)
        return stored, event

    async def check_current_password(
        self, account: Account, password: str, event: AuditEvent
    ) -> None:
        """A guess at the current password counts like a failed sign-in for the
        same account: a stolen access token does not buy unlimited guesses."""
        keys = sign_in_keys(self.sign_in, account.email, event.context.client_address)
        now = self.clock.now()
        try:
            attempt = await self.throttle.admit(
                keys.counted, now=now, gate=progressive_delay(self.sign_in, keys, now)
            )
        except RateLimited:
            await self.record(event.refused("throttled"))
            raise
        stored = await self.accounts.password_hash(account.id)
        try:
            check = await self.hasher.verify(stored, normalise_password(password))
        except Overloaded:
            await self.throttle.forget(attempt)
            raise
        if not check.matches:
            await self.record(event.failed("wrong-password"))
            raise WrongPassword("The current password is not correct.")
        await self.throttle.forget(attempt)

    async def code_was_right(self, attempt: ThrottleTicket) -> None:
        """A right code was no guess: it stops counting."""
        await self.throttle.forget(attempt)

    async def queue(self, message: MailMessage) -> None:
        """Inside the unit of work; `deliver_soon` after it commits."""
        await self.outbox.post(message)

    def deliver_soon(self) -> None:
        self.outbox.deliver_soon()


def patient_event(action: str, patient_id: UUID | None, context: RequestContext) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="success",
        actor_type="patient" if patient_id else "anonymous",
        actor_id=str(patient_id) if patient_id else None,
        patient_id=patient_id,
        context=context,
    )


def with_patient(event: AuditEvent, patient_id: UUID) -> AuditEvent:
    return msgspec.structs.replace(event, patient_id=patient_id)


def _rephrased(error: RateLimited, detail: str) -> RateLimited:
    # The throttle words its refusals for sign-in; these are not sign-ins.
    return RateLimited(
        detail,
        retry_after_seconds=error.retry_after_seconds,
        limit=error.limit,
        window_seconds=error.window_seconds,
    )


def code_refused() -> CodeRefused:
    return CodeRefused(
        "The code is not valid: it may be wrong, expired or used up. Ask for a new one."
    )
