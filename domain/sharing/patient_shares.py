"""The patient's side of sharing: create a share, list and show them, revoke one,
get its QR code, see who opened it. Each runs in one unit of work holding its
audit row; another patient's share id is refused as absent, and audited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import msgspec

from domain.access import Action, PatientActor, Permit
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.consents.consent import ConsentScope
from domain.errors import FieldProblem, InvalidInput, NotFound
from domain.ports import (
    AuditLog,
    BlobStore,
    Clock,
    ConsentStore,
    PasswordHasher,
    QrRenderer,
    ShareStore,
    UnitOfWork,
)
from domain.sharing.content import JWE_MEDIA_TYPE, ShareContent
from domain.sharing.imaging import ShareLinkGrant
from domain.sharing.link import (
    MAX_LABEL_LENGTH,
    encode_shlink,
    flags,
    manifest_url,
    new_key,
    new_token,
    token_digest,
    viewer_url,
)
from domain.sharing.model import NewShare, QrFormat, Share, ShareAccess, SharePageCursor
from domain.sharing.passcode import MAX_ATTEMPTS, check_passcode
from domain.sharing.scope import ShareScope

# A snapshot share's link (which holds its key) stays with phr only this long,
# for the app to fetch the QR code while the patient is with the doctor.
LINK_HOLD = timedelta(minutes=15)
MAX_LIFETIME = timedelta(days=366)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ShareRequest(msgspec.Struct, frozen=True, kw_only=True):
    expires_at: datetime
    scope: ShareScope
    label: str | None = None
    passcode: str | None = None
    long_term: bool = False


class CreatedShare(msgspec.Struct, frozen=True):
    share: Share
    shlink: str
    viewer_url: str


def _one_year_after(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year + 1)
    except ValueError:  # 29 February
        return now.replace(year=now.year + 1, day=28)


def check_request(request: ShareRequest, now: datetime) -> None:
    problems: list[FieldProblem] = []
    if request.expires_at.tzinfo is None:
        problems.append(FieldProblem("expiresAt", "an instant with a time zone"))
    elif request.expires_at <= now:
        problems.append(FieldProblem("expiresAt", "must be in the future"))
    elif request.expires_at > _one_year_after(now):
        problems.append(FieldProblem("expiresAt", "at most one year ahead"))
    if request.label is not None and (
        len(request.label) > MAX_LABEL_LENGTH or _CONTROL.search(request.label)
    ):
        problems.append(
            FieldProblem("label", f"at most {MAX_LABEL_LENGTH} characters, no control characters")
        )
    if problems:
        raise InvalidInput("The share request has invalid fields.", errors=problems)
    check_passcode(request.passcode)


class PatientShares:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        shares: ShareStore,
        consents: ConsentStore,
        content: ShareContent,
        files: BlobStore,
        hasher: PasswordHasher,
        qr: QrRenderer,
        audit: AuditLog,
        clock: Clock,
        public_url: str,
    ):
        self._unit_of_work = unit_of_work
        self._shares = shares
        self._consents = consents
        self._content = content
        self._files = files
        self._hasher = hasher
        self._qr = qr
        self._audit = audit
        self._clock = clock
        self._public_url = public_url

    @asynccontextmanager
    async def _permitted(
        self, patient: PatientActor, action: Action, context: RequestContext
    ) -> AsyncIterator[tuple[UnitOfWork, Permit]]:
        async with self._unit_of_work() as uow:
            permit = await authorize_audited(
                uow,
                self._audit,
                patient,
                action,
                patient.patient_id,
                now=self._clock.now(),
                context=context,
            )
            yield uow, permit

    async def _absent(self, uow: UnitOfWork, permit: Permit, share_id: UUID) -> NotFound:
        """Another patient's share, or none: the same answer, audited."""
        await self._audit.append(permit.refusal("not-found", "Share", str(share_id)))
        await uow.commit()
        return NotFound("No share with this id.")

    async def _owned(self, uow: UnitOfWork, permit: Permit, share_id: UUID) -> Share:
        share = await self._shares.get(permit, share_id)
        if share is None:
            raise await self._absent(uow, permit, share_id)
        return share

    async def create(
        self, patient: PatientActor, request: ShareRequest, *, context: RequestContext
    ) -> CreatedShare:
        now = self._clock.now()
        check_request(request, now)
        passcode_hash = await self._hasher.hash(request.passcode) if request.passcode else None
        share_id, token, key = uuid4(), new_token(), new_key()
        flag = flags(long_term=request.long_term, passcode=passcode_hash is not None)
        shlink = encode_shlink(
            url=manifest_url(self._public_url, token),
            key=key,
            expires_at=request.expires_at,
            flag=flag,
            label=request.label,
        )
        link = viewer_url(self._public_url, shlink)
        scope = request.scope
        async with self._permitted(patient, "share.created", context) as (uow, permit):
            consent = await self._consents.create(
                permit,
                kind="share",
                grantee_type="share",
                grantee_id=str(share_id),
                scope=ConsentScope(resource_types=scope.types),
                start=now,
                end=request.expires_at,
            )
            records = await self._content.records(
                permit, scope, now, live_sources_only=request.long_term
            )
            ciphertext_key: str | None = None
            ciphertext_bytes: int | None = None
            if not request.long_term:
                # Encrypted once, now; the key leaves with the response and is
                # kept only inside the briefly held link.
                encrypted = await self._content.encrypt(
                    permit,
                    records,
                    key,
                    now,
                    ShareLinkGrant(
                        share_id=share_id, consent_id=consent.id, expires_at=request.expires_at
                    ),
                )
                ciphertext_key = f"patients/{permit.patient_id}/shares/{share_id}"
                data = encrypted.jwe.encode("ascii")
                await self._files.put(ciphertext_key, data, content_type=JWE_MEDIA_TYPE)
                ciphertext_bytes = len(data)
            new = NewShare(
                id=share_id,
                consent_id=consent.id,
                token_digest=token_digest(token),
                label=request.label,
                flag=flag,
                scope=scope,
                passcode_hash=passcode_hash,
                attempts_left=MAX_ATTEMPTS,
                long_term=request.long_term,
                key=key if request.long_term else None,
                link=link,
                link_held_until=None if request.long_term else now + LINK_HOLD,
                record_ids=tuple(r.id for r in records),
                ciphertext_key=ciphertext_key,
                ciphertext_bytes=ciphertext_bytes,
                expires_at=request.expires_at,
                created_at=now,
            )
            share = await self._shares.create(permit, new)
            # Links held past their time (any patient's) are erased as shares come and go.
            await self._shares.forget_links(now)
            await self._audit.append(permit.event("Share", str(share_id)))
            await uow.commit()
        return CreatedShare(share=share, shlink=shlink, viewer_url=link)

    async def page(
        self,
        patient: PatientActor,
        after: SharePageCursor | None,
        limit: int,
        *,
        context: RequestContext,
    ) -> list[Share]:
        async with self._permitted(patient, "share.list", context) as (uow, permit):
            await self._shares.forget_links(self._clock.now())
            shares = await self._shares.page(permit, after, limit)
            await self._audit.append(permit.event("Share", *(str(s.id) for s in shares)))
            await uow.commit()
            return shares

    async def get(self, patient: PatientActor, share_id: UUID, *, context: RequestContext) -> Share:
        async with self._permitted(patient, "share.read", context) as (uow, permit):
            share = await self._owned(uow, permit, share_id)
            await self._audit.append(permit.event("Share", str(share_id)))
            await uow.commit()
            return share

    async def revoke(
        self, patient: PatientActor, share_id: UUID, *, context: RequestContext
    ) -> None:
        """Ends the share at once: the share and its consent are revoked, and a
        snapshot's ciphertext is deleted."""
        now = self._clock.now()
        async with self._permitted(patient, "share.revoked", context) as (uow, permit):
            share = await self._owned(uow, permit, share_id)
            if share.revoked_at is None:
                await self._shares.revoke(permit, share_id, now)
                await self._consents.revoke(permit, share.consent_id, now)
            await self._audit.append(permit.event("Share", str(share_id)))
            await uow.commit()
        if share.ciphertext_key is not None:
            await self._files.delete(share.ciphertext_key)

    async def qr(
        self, patient: PatientActor, share_id: UUID, fmt: QrFormat, *, context: RequestContext
    ) -> bytes:
        now = self._clock.now()
        async with self._permitted(patient, "share.qr", context) as (uow, permit):
            found = await self._shares.with_held_link(permit, share_id, now)
            if found is None:
                raise await self._absent(uow, permit, share_id)
            share, link = found
            if link is None or share.status_at(now) != "active":
                reason = "link-forgotten" if link is None else f"share-{share.status_at(now)}"
                await self._audit.append(permit.refusal(reason, "Share", str(share_id)))
                await uow.commit()
                raise NotFound(
                    "This share has ended."
                    if link is not None
                    else "phr no longer holds this snapshot share's link; show it from the app."
                )
            await self._audit.append(permit.event("Share", str(share_id)))
            await uow.commit()
        return await self._qr.render(link, fmt)

    async def accesses(
        self, patient: PatientActor, share_id: UUID, limit: int, *, context: RequestContext
    ) -> list[ShareAccess]:
        async with self._permitted(patient, "share.accesses", context) as (uow, permit):
            await self._owned(uow, permit, share_id)
            items = await self._shares.accesses(permit, share_id, limit)
            await self._audit.append(permit.event("Share", str(share_id)))
            await uow.commit()
            return items
