"""Signing up, signing in, refreshing and signing out: the use cases behind
/v1/auth. Each one is a single unit of work with its audit row in it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from uuid import UUID

import msgspec

from domain.access import PatientActor
from domain.accounts.account import Account, normalise_email
from domain.accounts.flow_support import EmailNotVerified
from domain.accounts.login_throttle import (
    SignInPolicy,
    progressive_delay,
    refresh_key,
    sign_in_keys,
)
from domain.accounts.passwords import PasswordPolicy, normalise_password
from domain.accounts.sessions import device_name_from, validated_device_name
from domain.accounts.tokens import AccessClaims, TokenPair, new_refresh_token, refresh_token_hash
from domain.audit.events import AuditEvent, RequestContext
from domain.audited_access import authorize_audited
from domain.blobs import patient_files_prefix
from domain.erasure_traces import erased_ref_digest
from domain.errors import (
    AuthenticationFailed,
    InvalidCredentials,
    NotFound,
    Overloaded,
    RateLimited,
    RefreshTokenRefused,
)
from domain.ports import (
    AccessTokens,
    AccountAlerts,
    AccountEraser,
    AccountStore,
    AuditLog,
    Clock,
    FileEraser,
    PasswordHasher,
    RefreshTokenStore,
    Throttle,
    UnitOfWork,
    UnitOfWorkFactory,
)
from domain.throttle import KeyCount, ThrottleKey
from domain.uploads.upload import UPLOAD_URL_LIFETIME

# After the last upload URL issued before an erasure has expired.
FILE_SWEEP_MARGIN = timedelta(minutes=1)

log = logging.getLogger("phr.auth")

# Told of every successful sign-in, inside its transaction (patient id, the
# client's User-Agent): a sign-in from a device not seen before notifies, and the
# notification commits with the sign-in or not at all.
SignInListener = Callable[[UUID, str | None], Awaitable[object]]


def _refused_refresh() -> RefreshTokenRefused:
    return RefreshTokenRefused("The refresh token is not valid; sign in again.")


class Authentication:
    def __init__(
        self,
        *,
        accounts: AccountStore,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        access_tokens: AccessTokens,
        refresh_tokens: RefreshTokenStore,
        throttle: Throttle,
        throttle_policy: SignInPolicy,
        alerts: AccountAlerts,
        audit: AuditLog,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        refresh_token_ttl_seconds: int,
        refresh_family_lifetime_seconds: int = 30 * 24 * 3600,
        verification_required: bool = True,
        on_signed_in: SignInListener | None = None,
    ):
        self._on_signed_in = on_signed_in
        self._accounts = accounts
        self._hasher = hasher
        self._policy = policy
        self._access_tokens = access_tokens
        self._refresh_tokens = refresh_tokens
        self._throttle = throttle
        self._throttle_policy = throttle_policy
        self._alerts = alerts
        self._audit = audit
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._refresh_ttl = timedelta(seconds=refresh_token_ttl_seconds)
        self._family_lifetime = timedelta(seconds=refresh_family_lifetime_seconds)
        self._verification_required = verification_required

    async def login(
        self,
        *,
        email: str,
        password: str,
        context: RequestContext,
        device_name: str | None = None,
    ) -> TokenPair:
        email = normalise_email(email)
        password = normalise_password(password)
        attempt_event = AuditEvent(
            action="auth.login",
            outcome="success",
            actor_type="anonymous",
            actor_id=None,
            patient_id=None,
            context=context,
        )
        policy = self._throttle_policy
        keys = sign_in_keys(policy, email, context.client_address)
        now = self._clock.now()
        delay = progressive_delay(policy, keys, now)
        seen: dict[tuple[str, str], KeyCount] = {}

        def gate(counts: Mapping[tuple[str, str], KeyCount]) -> None:
            seen.update(counts)
            delay(counts)

        try:
            async with self._unit_of_work() as uow:
                # Recorded (and committed) before the password is checked, so
                # parallel guesses see each other; forgotten if it was no failure.
                attempt = await self._throttle.admit(keys.counted, now=now, gate=gate)
                credentials = await self._accounts.credentials(email)
                await uow.commit()
        except RateLimited:
            await self._record(attempt_event.refused("throttled"))
            raise

        try:
            # Unknown accounts are checked against a dummy hash: same work, same time.
            check = await self._hasher.verify(
                credentials.password_hash if credentials else None, password
            )
        except Overloaded:
            # Our refusal is not the caller's failed guess.
            await self._throttle.forget(attempt)
            raise

        if credentials is None or not check.matches:
            failed = attempt_event.failed("bad-credentials")
            if credentials is not None:
                failed = msgspec.structs.replace(failed, patient_id=credentials.patient_id)
            await self._record(failed)
            if credentials is not None:
                account = seen[(keys.account.scope, keys.account.subject)].attempts + 1
                if account >= policy.delay_after:
                    await self._alert_owner(keys.alert, credentials.patient_id, account)
            raise InvalidCredentials("The email or password is not correct.")

        patient_id = credentials.patient_id
        if self._verification_required and not credentials.email_verified:
            # Told only to whoever knows the password: it says nothing to a guesser.
            # The right password: this was no guess, and the failures before it
            # stop counting, as after a sign-in.
            await self._throttle.forget(
                attempt,
                clear=[
                    (keys.account.scope, keys.account.subject),
                    (keys.pair.scope, keys.pair.subject),
                ],
            )
            await self._record(
                msgspec.structs.replace(
                    attempt_event.refused("email-not-verified"), patient_id=patient_id
                )
            )
            raise EmailNotVerified(
                "Confirm your email address with the code we sent, then sign in."
            )
        new_hash = None
        if check.needs_rehash:
            new_hash = await self._hasher.hash(password)
        now = self._clock.now()
        refresh_token = new_refresh_token()
        async with self._unit_of_work() as uow:
            # The owner is in: the failures so far (this client's and the
            # account's) stop counting against later sign-ins.
            await self._throttle.forget(
                attempt,
                clear=[
                    (keys.account.scope, keys.account.subject),
                    (keys.pair.scope, keys.pair.subject),
                ],
            )
            if new_hash is not None:
                await self._accounts.replace_password_hash(
                    patient_id, credentials.password_hash, new_hash, now
                )
            family_id = await self._refresh_tokens.start_family(
                patient_id=patient_id,
                token_hash=refresh_token_hash(refresh_token),
                issued_at=now,
                expires_at=now + self._refresh_ttl,
                family_expires_at=now + self._family_lifetime,
                device_name=validated_device_name(device_name)
                or device_name_from(context.user_agent),
                client_address=context.client_address,
            )
            access = await self._access_tokens.issue(patient_id, now, family_id)
            await self._audit.append(_patient_event("auth.login", patient_id, context))
            if self._on_signed_in is not None:
                await self._on_signed_in(patient_id, context.user_agent)
            await uow.commit()
        return TokenPair(
            access_token=access.token,
            refresh_token=refresh_token,
            expires_in=access.expires_in,
            patient_id=patient_id,
            family_id=family_id,
        )

    async def refresh(self, *, refresh_token: str, context: RequestContext) -> TokenPair:
        now = self._clock.now()
        # Counted (committed) before the token is looked up; forgotten if it was good.
        attempt = await self._throttle.admit(
            [refresh_key(self._throttle_policy, context.client_address)], now=now
        )
        token_hash = refresh_token_hash(refresh_token)
        denied = AuditEvent(
            action="auth.refresh",
            outcome="denied",
            actor_type="anonymous",
            actor_id=None,
            patient_id=None,
            context=context,
        )
        async with self._unit_of_work() as uow:
            state = await self._refresh_tokens.lock(token_hash)
            if state is None:
                await self._audit.append(denied.refused("unknown-token"))
                await uow.commit()
                raise _refused_refresh()
            denied = msgspec.structs.replace(denied, patient_id=state.patient_id)
            if state.family_revoked_at is not None:
                await self._audit.append(denied.refused("family-revoked"))
                await uow.commit()
                raise _refused_refresh()
            if state.spent_at is not None:
                await self._reuse_detected(state.family_id, state.patient_id, denied)
                await uow.commit()
                raise _refused_refresh()
            if state.expires_at <= now:
                await self._audit.append(denied.refused("expired"))
                await uow.commit()
                raise _refused_refresh()
            if state.family_expires_at is not None and state.family_expires_at <= now:
                await self._audit.append(denied.refused("family-expired"))
                await uow.commit()
                raise _refused_refresh()
            next_expiry = now + self._refresh_ttl
            if state.family_expires_at is not None:
                next_expiry = min(next_expiry, state.family_expires_at)
            next_token = new_refresh_token()
            spent = await self._refresh_tokens.spend_and_issue(
                spent_hash=token_hash,
                state=state,
                new_hash=refresh_token_hash(next_token),
                issued_at=now,
                expires_at=next_expiry,
            )
            if not spent:
                # Lost a race the family lock should have prevented: treat as reuse.
                await self._reuse_detected(state.family_id, state.patient_id, denied)
                await uow.commit()
                raise _refused_refresh()
            access = await self._access_tokens.issue(state.patient_id, now, state.family_id)
            await self._throttle.forget(attempt)
            await self._audit.append(
                _patient_event("auth.refresh", state.patient_id, context).with_resources(
                    "TokenFamily", str(state.family_id)
                )
            )
            await uow.commit()
        return TokenPair(
            access_token=access.token,
            refresh_token=next_token,
            expires_in=access.expires_in,
            patient_id=state.patient_id,
            family_id=state.family_id,
        )

    async def _reuse_detected(self, family_id: UUID, patient_id: UUID, denied: AuditEvent) -> None:
        """A spent token came back: either the client or a thief holds a copy.
        Revoke the whole family so neither can go on (RFC 9700 4.14.2)."""
        await self._refresh_tokens.revoke_family(family_id, patient_id, self._clock.now(), "reuse")
        await self._audit.append(
            msgspec.structs.replace(
                denied, action="auth.refresh_reuse", reason="token-reused"
            ).with_resources("TokenFamily", str(family_id))
        )

    async def logout(self, *, refresh_token: str, context: RequestContext) -> None:
        attempt = await self._throttle.admit(
            [refresh_key(self._throttle_policy, context.client_address)], now=self._clock.now()
        )
        async with self._unit_of_work() as uow:
            state = await self._refresh_tokens.lock(refresh_token_hash(refresh_token))
            if state is None:
                raise _refused_refresh()
            await self._throttle.forget(attempt)
            if state.family_revoked_at is None:
                await self._refresh_tokens.revoke_family(
                    state.family_id, state.patient_id, self._clock.now(), "logout"
                )
            await self._audit.append(
                _patient_event("auth.logout", state.patient_id, context).with_resources(
                    "TokenFamily", str(state.family_id)
                )
            )
            await uow.commit()

    async def authenticate(self, access_token: str) -> AccessClaims:
        claims = await self._access_tokens.verify(access_token, self._clock.now())
        # One look-up either way: an ended session (or an erased account) stops
        # its access tokens at once, not when they expire; so does a revoked key.
        if claims.session_id is not None:
            active = await self._refresh_tokens.session_active(
                claims.patient_id, claims.session_id, signed_with=claims.kid
            )
        else:
            active = await self._accounts.exists(claims.patient_id, signed_with=claims.kid)
        if not active:
            raise AuthenticationFailed("The access token is not valid.")
        return claims

    async def verify_access_token(self, access_token: str) -> AccessClaims:
        """The token's checks without the account look-up: for use cases whose one
        statement checks that the account still exists along with the read."""
        return await self._access_tokens.verify(access_token, self._clock.now())

    async def public_keys(self) -> list[dict[str, str]]:
        """The JWKs that verify access tokens now (for resource servers)."""
        return await self._access_tokens.jwks(self._clock.now())

    async def profile(self, patient_id: UUID) -> Account:
        account = await self._accounts.get(patient_id)
        if account is None:
            raise NotFound("No such account.")
        return account

    async def _alert_owner(self, alert: ThrottleKey, patient_id: UUID, failures: int) -> None:
        try:
            await self._throttle.admit([alert], now=self._clock.now())
        except RateLimited:
            return  # already told in this window
        try:
            await self._alerts.sign_in_under_attack(patient_id, failures)
        except Exception:
            log.warning("could not send the sign-in alert", exc_info=True)

    async def _record(self, event: AuditEvent) -> None:
        async with self._unit_of_work() as uow:
            await self._audit.append(event)
            await uow.commit()


def _patient_event(action: str, patient_id: UUID, context: RequestContext) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="success",
        actor_type="patient",
        actor_id=str(patient_id),
        patient_id=patient_id,
        context=context,
    )


# --- erasure ------------------------------------------------------------------
# Erasing an account: the patient's right to leave and take nothing behind.
#
# Records, versions, consents, shares, links, tokens and files go. The audit rows
# stay (they are the record of who saw what, and the log is append-only), now
# pointing at an id nobody can resolve to a person: pseudonymised.


class AccountErasure:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        accounts: AccountEraser,
        files: FileEraser,
        audit: AuditLog,
        clock: Clock,
        ref_key: bytes,
    ):
        self._unit_of_work = unit_of_work
        self._accounts = accounts
        self._files = files
        self._audit = audit
        self._clock = clock
        self._ref_key = ref_key

    async def erase(self, patient: PatientActor, *, context: RequestContext) -> None:
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                patient,
                "account.erased",
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            await self._audit.append(permit.event("Patient", str(permit.patient_id)))
            now = self._clock.now()
            # Hospitals that keep pushing for this patient get 410 from now on;
            # what they parked before is deleted with the rest.
            refs = await self._accounts.patient_refs(permit)
            await self._accounts.bury_patient_refs(
                permit,
                [(h, ref, erased_ref_digest(self._ref_key, h, ref)) for h, ref in refs],
                now,
            )
            prefix = patient_files_prefix(patient.patient_id)
            # An upload URL handed out before now may still put a file back.
            await self._accounts.schedule_file_sweep(
                permit, prefix, now + UPLOAD_URL_LIFETIME + FILE_SWEEP_MARGIN
            )
            if not await self._accounts.erase(permit):
                raise NotFound("No such account.")
            await uow.commit()
        # Object storage is not part of the transaction: files go once the rows
        # are gone, so a failure here leaves orphaned files, never a record
        # pointing at a missing file (and the scheduled sweep tries again).
        await self._files.seal_prefix(prefix)
        await self._files.delete_prefix(prefix)

    async def sweep_erased_files(self, *, limit: int = 100) -> int:
        """Empties, once more, the file prefixes of accounts erased longer ago than
        an upload URL lives: whatever such a URL put back goes. Returns how many."""
        swept = 0
        for prefix in await self._accounts.due_file_sweeps(self._clock.now(), limit):
            await self._files.delete_prefix(prefix)
            await self._accounts.file_sweep_done(prefix)
            swept += 1
        return swept
