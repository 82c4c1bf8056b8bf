"""DICOMweb over the patient's stored studies (PS3.18): QIDO-RS searches, WADO-RS
retrieves of instances, metadata and rendered frames, and series thumbnails.

Every request is one access decision: the caller (the patient, or a viewer
holding a study-scoped token the patient was given) is authorised for
`imaging.read`, a study outside the caller's reach answers 404 exactly like a
study that does not exist, and allowed or refused, the request is audited with
the study, series and instance UIDs it touched."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import msgspec

from domain.access import Actor, PatientActor, Permit
from domain.audit.events import RequestContext
from domain.audited_access import authorize_audited
from domain.consents.consent import Consent
from domain.dicom import DEFAULT_TAGS, Level, element, first_value
from domain.errors import NotFound
from domain.imaging_ports import (
    DicomInstanceReader,
    FrameRenderer,
    ImagingBlobStore,
    ImagingStore,
    ViewerTokens,
)
from domain.imaging_store import (
    RenderedImage,
    StoredInstance,
    StoredSeries,
    StoredStudy,
)
from domain.ports import AuditLog, Clock, UnitOfWork

MAX_QIDO_LIMIT = 1000


class QidoQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Attribute filters by tag (`00100020`), the extra tags to include (or all),
    and the page. Values follow PS3.18 8.3.4: `*`/`?` wildcards, `a-b` date
    ranges, backslash-separated UID lists."""

    filters: dict[str, str] = msgspec.field(default_factory=dict)
    include: frozenset[str] = frozenset()
    include_all: bool = False
    limit: int = 100
    offset: int = 0


def _wildcard(pattern: str) -> re.Pattern[str]:
    escaped = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(escaped, re.IGNORECASE | re.DOTALL)


def _texts(attributes: dict[str, Any], tag: str) -> list[str]:
    values = (attributes.get(tag) or {}).get("Value") or []
    out: list[str] = []
    for value in values:
        if isinstance(value, dict):  # PN: {"Alphabetic": "..."}
            out.append(str(value.get("Alphabetic", "")))
        else:
            out.append(str(value))
    return out


def matches(attributes: dict[str, Any], filters: dict[str, str]) -> bool:
    """PS3.4 C.2.2.2 matching, the parts DICOMweb clients use."""
    for tag, wanted in filters.items():
        if wanted == "":
            continue  # universal matching: "return this attribute"
        values = _texts(attributes, tag)
        vr = (attributes.get(tag) or {}).get("vr")
        if "\\" in wanted and vr == "UI":
            if not set(values) & set(wanted.split("\\")):
                return False
        elif vr in ("DA", "TM", "DT") and "-" in wanted:
            low, _, high = wanted.partition("-")
            if not any((not low or v >= low) and (not high or v <= high) for v in values):
                return False
        elif "*" in wanted or "?" in wanted:
            pattern = _wildcard(wanted)
            if not any(pattern.fullmatch(v) for v in values):
                return False
        elif vr == "PN":
            if not any(v.lower() == wanted.lower() for v in values):
                return False
        elif wanted not in values:
            return False
    return True


def _pick(attributes: dict[str, Any], level: Level, query: QidoQuery) -> dict[str, Any]:
    if query.include_all:
        return dict(attributes)
    keep = DEFAULT_TAGS[level] | query.include | frozenset(query.filters)
    return {tag: value for tag, value in attributes.items() if tag in keep}


def _retrieve_url(base: str, *uids: str) -> str:
    parts = ["studies", "series", "instances"]
    return base + "".join(f"/{parts[n]}/{uid}" for n, uid in enumerate(uids))


def study_json(study: StoredStudy, base: str, query: QidoQuery) -> dict[str, Any]:
    out = _pick(study.attributes, "study", query)
    modalities = sorted({s.modality for s in study.series if s.modality})
    out["00080061"] = element("CS", *modalities)
    out["00201206"] = element("IS", len(study.series))
    out["00201208"] = element("IS", study.instance_count)
    out["00081190"] = element("UR", _retrieve_url(base, study.study_uid))
    return dict(sorted(out.items()))


def series_json(series: StoredSeries, base: str, query: QidoQuery) -> dict[str, Any]:
    out = _pick(series.attributes, "series", query)
    out["0020000D"] = element("UI", series.study_uid)
    out["00201209"] = element("IS", series.instance_count)
    out["00081190"] = element("UR", _retrieve_url(base, series.study_uid, series.series_uid))
    return dict(sorted(out.items()))


def instance_json(instance: StoredInstance, base: str, query: QidoQuery) -> dict[str, Any]:
    out = _pick(instance.metadata or {}, "instance", query)
    out["0020000D"] = element("UI", instance.study_uid)
    out["0020000E"] = element("UI", instance.series_uid)
    out["00081190"] = element(
        "UR", _retrieve_url(base, instance.study_uid, instance.series_uid, instance.instance_uid)
    )
    return dict(sorted(out.items()))


def page(items: list[Any], query: QidoQuery) -> list[Any]:
    return items[query.offset : query.offset + query.limit]


class StudyScope(msgspec.Struct, frozen=True):
    """A caller limited to one study (a viewer token), or None for the whole record."""

    study_uid: str


class DicomWebCaller(msgspec.Struct, frozen=True):
    """Who is asking, limited to what, and the base URL their answers link to."""

    actor: Actor
    patient_id: UUID
    scope: StudyScope | None
    base: str


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

    def patient_caller(self, patient_id: UUID) -> DicomWebCaller:
        """The signed-in patient: the whole record, links under the bearer prefix."""
        return DicomWebCaller(PatientActor(patient_id), patient_id, None, self.base_url)

    def viewer_caller(self, token: str) -> DicomWebCaller:
        """A viewer holding a study-scoped token (AuthenticationFailed if it is
        forged or expired): that study only, links under the token's prefix."""
        grant = self._viewer_tokens.verify(token, self._clock.now())
        return DicomWebCaller(
            PatientActor(grant.patient_id),
            grant.patient_id,
            StudyScope(grant.study_uid),
            f"{self.base_url}/t/{token}",
        )

    async def _permit(
        self,
        uow: UnitOfWork,
        actor: Actor,
        patient_id: UUID,
        context: RequestContext,
        consent: Consent | None,
    ) -> Permit:
        return await authorize_audited(
            uow,
            self._audit,
            actor,
            "imaging.read",
            patient_id,
            now=self._clock.now(),
            consent=consent,
            context=context,
        )

    async def _refuse(self, uow: UnitOfWork, permit: Permit, *uids: str) -> NotFound:
        await self._audit.append(permit.refusal("not-found", "ImagingStudy", *uids))
        await uow.commit()
        return NotFound("No such study, series or instance.")

    def _in_scope(self, scope: StudyScope | None, study_uid: str | None) -> bool:
        return scope is None or study_uid is None or scope.study_uid == study_uid

    async def search_studies(
        self,
        actor: Actor,
        patient_id: UUID,
        query: QidoQuery,
        *,
        base: str,
        scope: StudyScope | None,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> list[dict[str, Any]]:
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, actor, patient_id, context, consent)
            studies = await self._store.studies(permit, scope.study_uid if scope else None)
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
        return [study_json(s, base, query) for s in found]

    async def search_series(
        self,
        actor: Actor,
        patient_id: UUID,
        study_uid: str,
        query: QidoQuery,
        *,
        base: str,
        scope: StudyScope | None,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> list[dict[str, Any]]:
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, actor, patient_id, context, consent)
            studies = (
                await self._store.studies(permit, study_uid)
                if self._in_scope(scope, study_uid)
                else []
            )
            if not studies:
                raise await self._refuse(uow, permit, study_uid)
            found = page(
                [s for s in studies[0].series if matches(s.attributes, query.filters)], query
            )
            await self._audit.append(permit.event("ImagingStudy", study_uid))
            await uow.commit()
        return [series_json(s, base, query) for s in found]

    async def search_instances(
        self,
        actor: Actor,
        patient_id: UUID,
        study_uid: str,
        series_uid: str | None,
        query: QidoQuery,
        *,
        base: str,
        scope: StudyScope | None,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> list[dict[str, Any]]:
        instances = await self.instances(
            actor,
            patient_id,
            study_uid,
            series_uid,
            None,
            scope=scope,
            context=context,
            consent=consent,
            with_metadata=True,
        )
        found = page([i for i in instances if matches(i.metadata or {}, query.filters)], query)
        return [instance_json(i, base, query) for i in found]

    async def instances(
        self,
        actor: Actor,
        patient_id: UUID,
        study_uid: str,
        series_uid: str | None = None,
        instance_uid: str | None = None,
        *,
        scope: StudyScope | None,
        context: RequestContext,
        consent: Consent | None = None,
        with_metadata: bool = False,
    ) -> list[StoredInstance]:
        """The instances a WADO-RS retrieve or metadata request names; NotFound
        (audited) if there are none the caller may see."""
        uids = [u for u in (study_uid, series_uid, instance_uid) if u]
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, actor, patient_id, context, consent)
            found = (
                await self._store.instances(
                    permit, study_uid, series_uid, instance_uid, with_metadata=with_metadata
                )
                if self._in_scope(scope, study_uid)
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

    async def render(
        self,
        actor: Actor,
        patient_id: UUID,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        frame: int,
        media_type: str,
        *,
        scope: StudyScope | None,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> RenderedImage:
        found = await self.instances(
            actor,
            patient_id,
            study_uid,
            series_uid,
            instance_uid,
            scope=scope,
            context=context,
            consent=consent,
        )
        data = await self._blobs.read(found[0].key)
        return await self._renderer.render(data, frame, media_type)

    async def bulk_data(
        self,
        caller: DicomWebCaller,
        study_uid: str,
        series_uid: str,
        instance_uid: str,
        tag: int,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> bytes:
        """A BulkDataURI of the metadata: one element's bytes (pixel data as encoded)."""
        found = await self.instances(
            caller.actor,
            caller.patient_id,
            study_uid,
            series_uid,
            instance_uid,
            scope=caller.scope,
            context=context,
            consent=consent,
        )
        value = await self._reader.bulk_data(await self._blobs.read(found[0].key), tag)
        if value is None:
            raise NotFound("The instance has no such element.")
        return value

    async def thumbnail(
        self,
        actor: Actor,
        patient_id: UUID,
        study_uid: str,
        series_uid: str,
        *,
        scope: StudyScope | None,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> bytes:
        """The series' stored preview (PNG); NotFound if it has none yet."""
        async with self._unit_of_work() as uow:
            permit = await self._permit(uow, actor, patient_id, context, consent)
            studies = (
                await self._store.studies(permit, study_uid)
                if self._in_scope(scope, study_uid)
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


__all__ = ["DicomWeb", "QidoQuery", "StudyScope", "first_value"]
