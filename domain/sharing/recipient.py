"""The doctor's side: resolve a SMART Health Link's manifest, fetch a file from a
`location`. No authentication: the manifest token (and the passcode, if set)
is the whole authority, checked through the access policy with the share's
consent, and every request (refused ones too) is audited in the patient's
chain with the share recipient as actor."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Literal
from uuid import UUID

import msgspec

from domain.access import AccessRefused, Action, ActionNotAllowed, Permit, ShareRecipient, authorize
from domain.audit.events import RequestContext
from domain.errors import FieldProblem, InvalidInput, NotFound, RateLimited
from domain.ports import (
    AuditLog,
    BlobStore,
    Clock,
    ConsentStore,
    PasswordHasher,
    RequestThrottle,
    ShareStore,
    UnitOfWork,
)
from domain.sharing.content import JWE_MEDIA_TYPE, ShareContent
from domain.sharing.imaging import ShareLinkGrant
from domain.sharing.link import new_token, token_digest
from domain.sharing.model import Share, ShareAccess
from domain.sharing.passcode import WrongPasscode
from domain.sharing.ports import ShareAccessListener

# A `location` is a bearer URL for one file: short-lived (the spec allows an hour
# at most) and good for one download.
LOCATION_LIFETIME = timedelta(minutes=30)
MAX_RECIPIENT_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# check_recipient's rule as one regular expression, for the contract: what
# str.strip() leaves is not empty and has no control character. Python's
# whitespace is spelled out (JSON Schema's \s is ECMAScript's, not Python's).
_SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_KEPT = r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
RECIPIENT_PATTERN = rf"^{_SPACE}*{_KEPT}(?:[^\x00-\x1f\x7f]*{_KEPT})?{_SPACE}*$"
FHIR_CONTENT_TYPE = "application/fhir+json"


class ManifestFile(msgspec.Struct, frozen=True, omit_defaults=True):
    content_type: str
    embedded: str | None = None
    location: str | None = None


class ServedFile(msgspec.Struct, frozen=True):
    jwe: bytes
    media_type: str = JWE_MEDIA_TYPE


def check_recipient(recipient: str) -> str:
    recipient = recipient.strip()
    if not 1 <= len(recipient) <= MAX_RECIPIENT_LENGTH or _CONTROL.search(recipient):
        raise InvalidInput(
            "recipient must name who is opening the link.",
            errors=[
                FieldProblem(
                    "recipient", f"1 to {MAX_RECIPIENT_LENGTH} characters, no control characters"
                )
            ],
        )
    return recipient


class ShareManifests:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        shares: ShareStore,
        consents: ConsentStore,
        content: ShareContent,
        files: BlobStore,
        hasher: PasswordHasher,
        throttle: RequestThrottle,
        audit: AuditLog,
        clock: Clock,
        public_url: str,
        on_accessed: ShareAccessListener | None = None,
    ):
        self._unit_of_work = unit_of_work
        self._on_accessed = on_accessed
        self._shares = shares
        self._consents = consents
        self._content = content
        self._files = files
        self._hasher = hasher
        self._throttle = throttle
        self._audit = audit
        self._clock = clock
        self._public_url = public_url.rstrip("/")

    async def _authorized(
        self, share: Share, recipient: str, action: Action, context: RequestContext
    ) -> Permit:
        """The policy's decision on the share's consent, then the share's own
        state; a refusal is audited in the patient's chain and looks like absence."""
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            consent = await self._consents.relied_on(share.consent_id)
            try:
                permit = authorize(
                    ShareRecipient(share.id, recipient),
                    action,
                    share.patient_id,
                    now=now,
                    consent=consent,
                    context=context,
                )
            except (AccessRefused, ActionNotAllowed) as refused:
                await self._audit.append(refused.audit)
                await uow.commit()
                raise NotFound("No such link.") from None
            status = share.status_at(now)
            if status != "active":
                await self._audit.append(permit.refusal(f"share-{status}", "Share", str(share.id)))
                await uow.commit()
                raise NotFound("No such link.")
        return permit

    async def _refuse(self, permit: Permit, share: Share, reason: str) -> None:
        async with self._unit_of_work() as uow:
            await self._audit.append(permit.refusal(reason, "Share", str(share.id)))
            await uow.commit()

    async def _check_passcode(self, permit: Permit, share: Share, passcode: str | None) -> None:
        assert share.passcode_hash is not None
        if passcode is None:
            await self._refuse(permit, share, "passcode-missing")
            raise WrongPasscode(share.attempts_left)
        # Reserved and committed before the check: parallel guesses cannot
        # outnumber the attempts left (see domain.sharing.passcode).
        left = await self._shares.reserve_attempt(permit, share.id)
        if left is None:
            await self._refuse(permit, share, "share-disabled")
            raise NotFound("No such link.")
        try:
            check = await self._hasher.verify(share.passcode_hash, passcode)
        except BaseException:
            await self._shares.refund_attempt(permit, share.id)
            raise
        if check.matches:
            await self._shares.refund_attempt(permit, share.id)
            return
        if left == 0:
            await self._shares.disable(permit, share.id, self._clock.now())
        await self._refuse(permit, share, "wrong-passcode")
        raise WrongPasscode(left)

    async def _ciphertext(self, permit: Permit, share: Share) -> tuple[bytes, tuple[UUID, ...]]:
        """A snapshot's stored ciphertext, or a long-term share rebuilt now (new
        records in scope appear, a revoked hospital's disappear)."""
        if not share.long_term:
            assert share.ciphertext_key is not None
            return await self._files.read(share.ciphertext_key), share.record_ids
        now = self._clock.now()
        records = await self._content.records(permit, share.scope, now, live_sources_only=True)
        key = await self._shares.key(permit, share.id)
        grant = ShareLinkGrant(
            share_id=share.id, consent_id=share.consent_id, expires_at=share.expires_at
        )
        encrypted = await self._content.encrypt(permit, records, key, now, grant)
        return encrypted.jwe.encode("ascii"), encrypted.record_ids

    async def manifest(
        self,
        token: str,
        *,
        recipient: str,
        passcode: str | None,
        embedded_length_max: int | None,
        context: RequestContext,
    ) -> list[ManifestFile]:
        recipient = check_recipient(recipient)
        digest = token_digest(token)
        refused = await self._throttle.admit(
            [f"link:{digest.hex()}", f"address:{context.client_address or '-'}"],
            self._clock.now(),
        )
        if refused is not None:
            raise RateLimited(
                "Too many requests for this link or from this address; retry later.",
                retry_after_seconds=refused.retry_after_seconds,
                limit=refused.limit,
                window_seconds=refused.window_seconds,
            )
        share = await self._shares.by_token(digest)
        if share is None:
            raise NotFound("No such link.")
        permit = await self._authorized(share, recipient, "share.manifest", context)
        if share.passcode_hash is not None:
            await self._check_passcode(permit, share, passcode)
        return await self._serve_manifest(permit, share, recipient, embedded_length_max, context)

    async def _serve_manifest(
        self,
        permit: Permit,
        share: Share,
        recipient: str,
        embedded_length_max: int | None,
        context: RequestContext,
    ) -> list[ManifestFile]:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            fits = embedded_length_max is None or (
                share.ciphertext_bytes is not None and share.ciphertext_bytes <= embedded_length_max
            )
            if share.long_term or fits:
                jwe, record_ids = await self._ciphertext(permit, share)
                fits = embedded_length_max is None or len(jwe) <= embedded_length_max
            else:
                jwe, record_ids = b"", share.record_ids
            if fits:
                file = ManifestFile(content_type=FHIR_CONTENT_TYPE, embedded=jwe.decode("ascii"))
            else:
                ticket = new_token()
                await self._shares.issue_ticket(
                    permit, share.id, token_digest(ticket), recipient, now + LOCATION_LIFETIME
                )
                file = ManifestFile(
                    content_type=FHIR_CONTENT_TYPE,
                    location=f"{self._public_url}/shl/files/{ticket}",
                )
            await self._access(
                permit, share, "manifest", recipient, context, files=1 if fits else 0
            )
            await self._audit.append(permit.event("Bundle", *(str(i) for i in record_ids)))
            await uow.commit()
        return [file]

    async def _access(
        self,
        permit: Permit,
        share: Share,
        kind: Literal["manifest", "file"],
        recipient: str,
        context: RequestContext,
        *,
        files: int,
    ) -> None:
        await self._shares.record_access(
            permit,
            share.id,
            ShareAccess(
                kind=kind,
                recipient=recipient,
                client_address=context.client_address,
                user_agent=context.user_agent,
                files=files,
                accessed_at=self._clock.now(),
            ),
        )
        if self._on_accessed is not None:
            # In the access's own transaction: the patient hears of a look that happened.
            await self._on_accessed(permit, share.id, share.label, recipient)

    async def file(self, ticket: str, *, context: RequestContext) -> ServedFile:
        """One use of a `location` from a manifest, before it expires."""
        used = await self._shares.use_ticket(token_digest(ticket), self._clock.now())
        if used is None:
            raise NotFound("No such file, or its location has expired or was used.")
        share, recipient = used
        permit = await self._authorized(share, recipient, "share.file", context)
        async with self._unit_of_work() as uow:
            jwe, record_ids = await self._ciphertext(permit, share)
            await self._access(permit, share, "file", recipient, context, files=1)
            await self._audit.append(permit.event("Bundle", *(str(i) for i in record_ids)))
            await uow.commit()
        return ServedFile(jwe=jwe)
