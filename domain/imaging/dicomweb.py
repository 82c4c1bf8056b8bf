"""DICOMweb over the patient's stored studies (PS3.18): QIDO-RS searches, WADO-RS
retrieves of instances, frames, metadata and rendered frames, and series
thumbnails.

Every request is one access decision: the caller (the patient, a viewer holding
a study-scoped token the patient was given, or a share's recipient holding a
session opened from the share's viewer link) is authorised for `imaging.read`,
a study outside the caller's reach answers 404 exactly like a study that does
not exist, and allowed or refused, the request is audited with the study,
series and instance UIDs it touched. A share recipient's every request is
checked against the share's consent and the share itself: revoking, expiry or
disabling ends the viewer at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from domain.access import PatientActor, Permit, ShareRecipient
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.errors import AuthenticationFailed, NotFound
from domain.imaging.dicom import element, first_value
from domain.imaging.ports import (
    DicomInstanceReader,
    FrameRenderer,
    ImagingBlobStore,
    ImagingStore,
    ViewerTokens,
)
from domain.imaging.qido import (
    MAX_QIDO_LIMIT,
    QidoQuery,
    instance_json,
    matches,
    page,
    series_json,
    study_json,
)
from domain.imaging.store import RenderedImage, StoredInstance, ViewerGrant
from domain.ports import AuditLog, Clock, ConsentStore, ShareStore, UnitOfWork
from domain.sharing.model import ShareAccess
from domain.sharing.recipient import check_recipient


class StudyScope(msgspec.Struct, frozen=True):
    """A caller limited to one study (a viewer token), or None for the whole record."""

    study_uid: str


class DicomWebCaller(msgspec.Struct, frozen=True):
    """Who is asking, limited to what, the base URL their answers link to, and
    (a share's recipient) the consent they rely on."""

    actor: PatientActor | ShareRecipient
    patient_id: UUID
    scope: StudyScope | None
    base: str
    consent_id: UUID | None = None


class SharedViewerSession(msgspec.Struct, frozen=True, kw_only=True):
    """What opening a share's viewer link gives its recipient: a study-scoped
    DICOMweb base (the session token is in it) valid until `expires_at`."""

    study_uid: str
    token: str
    dicomweb_url: str
    expires_at: datetime


class DicomWeb:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        store: ImagingStore,
        blobs: ImagingBlobStore,
        renderer: FrameRenderer,
        audit: AuditLog,
        clock: Clock,
        viewer_tokens: ViewerTokens,
        reader: DicomInstanceReader,
        consents: ConsentStore,
        shares: ShareStore,
        base_url: str,
    ):
        self._reader = reader
        self._viewer_tokens = viewer_tokens
        self.base_url = base_url
        self._unit_of_work = unit_of_work
        self._store = store
        self._blobs = blobs
        self._renderer = renderer
        self._audit = audit
        self._clock = clock
        self._consents = consents
        self._shares = shares

    def patient_caller(self, patient_id: UUID) -> DicomWebCaller:
        """The signed-in patient: the whole record, links under the bearer prefix."""
        return DicomWebCaller(PatientActor(patient_id), patient_id, None, self.base_url)

    def _caller(self, grant: ViewerGrant, token: str) -> DicomWebCaller:
        actor: PatientActor | ShareRecipient = (
            ShareRecipient(grant.share_id, grant.recipient)
            if grant.share_id is not None and grant.recipient is not None
            else PatientActor(grant.patient_id)
        )
        return DicomWebCaller(
            actor,
            grant.patient_id,
            StudyScope(grant.study_uid),
            f"{self.base_url}/t/{token}",
            grant.consent_id,
        )

    def viewer_caller(self, token: str) -> DicomWebCaller:
        """A viewer holding a study-scoped token (AuthenticationFailed if it is
        forged or expired): that study only, links under the token's prefix. A
        share's viewer link itself is no such token: it opens a session first."""
        grant = self._viewer_tokens.verify(token, self._clock.now())
        if grant.is_share_link:
            raise AuthenticationFailed("A share's viewer link must be opened first.")
        return self._caller(grant, token)

    async def open_share_link(
        self, link: str, recipient: str, *, context: RequestContext
    ) -> SharedViewerSession:
        """A share recipient opens the viewer link the share carries: checked
        (and audited) like every DICOMweb request, then a short-lived session
        naming the recipient, never outliving the share."""
        recipient = check_recipient(recipient)
        now = self._clock.now()
        grant = self._viewer_tokens.verify(link, now)
        if not grant.is_share_link:
            raise AuthenticationFailed("This is not a share's viewer link.")
        session = self._viewer_tokens.session(grant, recipient, now)
        token = self._viewer_tokens.seal(session)
        caller = self._caller(session, token)
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, caller, context)
            if not await self._store.studies(permit, grant.study_uid):
                raise await self._refuse(uow, permit, grant.study_uid)
            assert grant.share_id is not None
            # In the share's access list too: the patient sees who opened the images.
            await self._shares.record_access(
                permit,
                grant.share_id,
                ShareAccess(
                    kind="viewer",
                    recipient=recipient,
                    client_address=context.client_address,
                    user_agent=context.user_agent,
                    files=0,
                    accessed_at=now,
                ),
            )
            await self._audit.append(permit.event("ImagingStudy", grant.study_uid))
            await uow.commit()
        return SharedViewerSession(
            study_uid=grant.study_uid,
            token=token,
            dicomweb_url=caller.base,
            expires_at=datetime.fromtimestamp(session.expires, UTC),
        )

    async def _permit(
        self, uow: UnitOfWork, caller: DicomWebCaller, context: RequestContext
    ) -> Permit:
        now = self._clock.now()
        consent = (
            await self._consents.relied_on(caller.consent_id)
            if caller.consent_id is not None
            else None
        )
        permit = await authorize_audited(
            uow,
            self._audit,
            caller.actor,
            "imaging.read",
            caller.patient_id,
            now=now,
            consent=consent,
            context=context,
        )
        if isinstance(caller.actor, ShareRecipient):
            # The consent ends with a revoked or expired share; a share disabled
            # by wrong passcodes keeps its consent, so the share itself is asked.
            share = await self._shares.get(permit, caller.actor.share_id)
            status = share.status_at(now) if share is not None else "revoked"
            if status != "active":
                await self._audit.append(
                    permit.refusal(f"share-{status}", "Share", str(caller.actor.share_id))
                )
                await uow.commit()
                raise NotFound("No such study, series or instance.")
        return permit

    async def _refuse(self, uow: UnitOfWork, permit: Permit, *uids: str) -> NotFound:
        await self._audit.append(permit.refusal("not-found", "ImagingStudy", *uids))
        await uow.commit()
        return NotFound("No such study, series or instance.")

    def _in_scope(self, caller: DicomWebCaller, study_uid: str | None) -> bool:
        return caller.scope is None or study_uid is None or caller.scope.study_uid == study_uid

    def _study_filter(self, caller: DicomWebCaller, study_uid: str | None) -> str | None:
        """The study a search is limited to: the one named, or the token's."""
        return study_uid or (caller.scope.study_uid if caller.scope else None)

    async def search_studies(
        self, caller: DicomWebCaller, query: QidoQuery, *, context: RequestContext
    ) -> list[dict[str, Any]]:
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, caller, context)
            studies = await self._store.studies(permit, self._study_filter(caller, None))
            found = page(
                [
                    s
                    for s in studies
                    if matches(
                        s.attributes
                        | {
                            "00080061": element("CS", *{x.modality for x in s.series if x.modality})
                        },
                        query.filters,
                    )
                ],
                query,
            )
            await self._audit.append(permit.event("ImagingStudy", *(s.study_uid for s in found)))
            await uow.commit()
        return [study_json(s, caller.base, query) for s in found]

    async def search_series(
        self,
        caller: DicomWebCaller,
        study_uid: str | None,
        query: QidoQuery,
        *,
        context: RequestContext,
    ) -> list[dict[str, Any]]:
        """A study's series, or (`study_uid` None) every series the caller may see."""
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, caller, context)
            studies = (
                await self._store.studies(permit, self._study_filter(caller, study_uid))
                if self._in_scope(caller, study_uid)
                else []
            )
            if study_uid is not None and not studies:
                raise await self._refuse(uow, permit, study_uid)
            found = page(
                [s for st in studies for s in st.series if matches(s.attributes, query.filters)],
                query,
            )
            await self._audit.append(
                permit.event("ImagingStudy", *dict.fromkeys(s.study_uid for s in found))
                if study_uid is None
                else permit.event("ImagingStudy", study_uid)
            )
            await uow.commit()
        return [series_json(s, caller.base, query) for s in found]

    async def search_instances(
        self,
        caller: DicomWebCaller,
        study_uid: str | None,
        series_uid: str | None,
        query: QidoQuery,
        *,
        context: RequestContext,
    ) -> list[dict[str, Any]]:
        """A series' or a study's instances, or (both None) every instance the
        caller may see; the last is a search, so finding none is no 404."""
        if study_uid is None:
            async with self._unit_of_work() as uow:
                permit = await self._permit(uow, caller, context)
                instances = await self._store.instances(
                    permit, self._study_filter(caller, None), with_metadata=True
                )
                found = page(
                    [i for i in instances if matches(i.metadata or {}, query.filters)], query
                )
                await self._audit.append(
                    permit.event("ImagingStudy", *dict.fromkeys(i.study_uid for i in found))
                )
                await uow.commit()
        else:
            instances = await self.instances(
                caller, study_uid, series_uid, None, context=context, with_metadata=True
            )
            found = page([i for i in instances if matches(i.metadata or {}, query.filters)], query)
        return [instance_json(i, caller.base, query) for i in found]

    async def instances(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str | None = None,
        instance_uid: str | None = None,
        *,
        context: RequestContext,
        with_metadata: bool = False,
    ) -> list[StoredInstance]:
        """The instances a WADO-RS retrieve or metadata request names; NotFound
        (audited) if there are none the caller may see."""
        uids = [u for u in (study_uid, series_uid, instance_uid) if u]
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, caller, context)
            found = (
                await self._store.instances(
                    permit, study_uid, series_uid, instance_uid, with_metadata=with_metadata
                )
                if self._in_scope(caller, study_uid)
                else []
            )
            if not found:
                raise await self._refuse(uow, permit, *uids)
            await self._audit.append(permit.event("ImagingStudy", *uids))
            await uow.commit()
        return found

    def content(self, instance: StoredInstance) -> AsyncIterator[bytes]:
        """The instance's file, streamed from the blob store; call it only with
        an instance `instances` returned (that call was the access decision)."""
        return self._blobs.stream(instance.key)

    async def _one_file(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        context: RequestContext,
    ) -> tuple[StoredInstance, bytes]:
        [found] = await self.instances(caller, study_uid, series_uid, instance_uid, context=context)
        return found, await self._blobs.read(found.key)

    async def render(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        frame: int,
        media_type: str,
        *,
        context: RequestContext,
    ) -> RenderedImage:
        _, data = await self._one_file(caller, study_uid, series_uid, instance_uid, context)
        return await self._renderer.render(data, frame, media_type)

    async def frames(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        numbers: list[int],
        *,
        accept: frozenset[str] | None,
        context: RequestContext,
    ) -> tuple[str, list[bytes]]:
        """Frames as stored (their media type: image/jpeg, image/jp2, ... or
        application/octet-stream for native pixel data), or decoded to native
        little-endian bytes if only that is in `accept` (None: anything);
        NotFound if the instance lacks one of them."""
        found, data = await self._one_file(caller, study_uid, series_uid, instance_uid, context)
        if any(n > found.frames for n in numbers):
            raise NotFound("The instance has no such frame.")
        return await self._reader.frames(data, numbers, accept=accept)

    async def bulk_data(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        tag: int,
        *,
        context: RequestContext,
    ) -> bytes:
        """A BulkDataURI of the metadata: one element's bytes (pixel data as encoded)."""
        _, data = await self._one_file(caller, study_uid, series_uid, instance_uid, context)
        value = await self._reader.bulk_data(data, tag)
        if value is None:
            raise NotFound("The instance has no such element.")
        return value

    async def thumbnail(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str,
        *,
        context: RequestContext,
    ) -> bytes:
        """The series' stored preview (PNG); NotFound if it has none yet."""
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, caller, context)
            studies = (
                await self._store.studies(permit, study_uid)
                if self._in_scope(caller, study_uid)
                else []
            )
            series = next(
                (s for st in studies for s in st.series if s.series_uid == series_uid), None
            )
            if series is None or series.preview_key is None:
                raise await self._refuse(uow, permit, study_uid, series_uid)
            await self._audit.append(permit.event("ImagingStudy", study_uid, series_uid))
            await uow.commit()
        return await self._blobs.read(series.preview_key)


__all__ = [
    "MAX_QIDO_LIMIT",
    "DicomWeb",
    "DicomWebCaller",
    "QidoQuery",
    "SharedViewerSession",
    "StudyScope",
    "first_value",
]
