"""The patient's imaging list: every ImagingStudy record (a hospital's, with its
Endpoint links; the patient's own, with what phr stores of it: series, previews)
in one access decision and one audit event, in two round trips: the audited
read of the records, then (only if the patient stores studies) the stored series.

Each stored study gets links that work without a header (a study-scoped viewer
token in the path): phr's DICOMweb base, the built-in viewer, and the external
viewer template (`{studyUid}`, `{dicomwebUrl}`) when one is configured. A
hospital's study gets the external viewer over the hospital's own DICOMweb
address: phr does not proxy a hospital's PACS."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote
from uuid import UUID

import msgspec

from domain.access import Actor
from domain.audit.events import RequestContext
from domain.audited_access import account_gone, authorize_read
from domain.consents.consent import Consent
from domain.imaging.ports import ImagingStore, ViewerTokens
from domain.imaging.store import StoredStudy
from domain.ports import AuditLog, Clock, RecordStore, UnitOfWork
from domain.records.imaging import ImagingLink, ImagingStudyView, study_views


class SeriesPreview(msgspec.Struct, frozen=True, kw_only=True):
    series_uid: str
    modality: str | None
    body_part: str | None
    description: str | None
    instance_count: int
    preview_url: str | None
    width: int | None
    height: int | None


class StudyListing(msgspec.Struct, frozen=True, kw_only=True):
    view: ImagingStudyView
    links: tuple[ImagingLink, ...]
    series: tuple[SeriesPreview, ...] = ()
    patient_aliases: tuple[str, ...] = ()


class ImagingLinks(msgspec.Struct, frozen=True):
    public_url: str
    dicomweb_base: str
    viewer_template: str | None = None

    def external(self, study_uid: str, dicomweb_url: str) -> ImagingLink | None:
        if not self.viewer_template:
            return None
        url = self.viewer_template.replace("{studyUid}", quote(study_uid, safe="")).replace(
            "{dicomwebUrl}", quote(dicomweb_url, safe="")
        )
        return ImagingLink(kind="viewer", url=url, name="External viewer")


class ImagingCatalog:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        records: RecordStore,
        store: ImagingStore,
        viewer_tokens: ViewerTokens,
        links: ImagingLinks,
        audit: AuditLog,
        clock: Clock,
    ):
        self._unit_of_work = unit_of_work
        self._records = records
        self._store = store
        self._viewer_tokens = viewer_tokens
        self._links = links
        self._audit = audit
        self._clock = clock

    async def list(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        context: RequestContext,
        consent: Consent | None = None,
    ) -> list[StudyListing]:
        permit = await authorize_read(
            self._unit_of_work,
            self._audit,
            actor,
            "imaging.list",
            patient_id,
            now=self._clock.now(),
            context=context,
            consent=consent,
        )
        # The records, the account check and the audit row (listing the studies)
        # are one statement, committed before anything is returned.
        rows, account_active = await self._records.of_types_audited(
            permit, ["ImagingStudy", "Endpoint"], permit.event("ImagingStudy"), "ImagingStudy"
        )
        if not account_active:
            raise account_gone(actor)
        views = study_views(rows)
        # What phr stores of the patient's own studies (series, previews), read
        # after that commit: `_listing` attaches it only to the views the audit row
        # lists, so a study stored since is not shown. Hospitals' studies need no read.
        stored = (
            {s.study_uid: s for s in await self._store.studies(permit)}
            if any(v.source.kind == "self" and v.study_uid for v in views)
            else {}
        )
        return [self._listing(patient_id, view, stored) for view in views]

    def _listing(
        self, patient_id: UUID, view: ImagingStudyView, stored: dict[str, StoredStudy]
    ) -> StudyListing:
        study = stored.get(view.study_uid or "") if view.source.kind == "self" else None
        if study is None:
            links = list(view.links)
            wado = next((link.url for link in links if link.kind == "dicomweb"), None)
            external = (
                self._links.external(view.study_uid, wado) if view.study_uid and wado else None
            )
            return StudyListing(view=view, links=tuple(links + ([external] if external else [])))
        token = self._viewer_tokens.mint(patient_id, study.study_uid, self._clock.now())
        base = f"{self._links.dicomweb_base}/t/{token}"
        links = [
            ImagingLink(kind="dicomweb", url=base, name="DICOMweb (this study)"),
            ImagingLink(
                kind="viewer",
                url=f"{self._links.public_url}/imaging/viewer#study={study.study_uid}&token={token}",
                name="Viewer",
            ),
        ]
        external = self._links.external(study.study_uid, base)
        if external:
            links.append(external)
        return StudyListing(
            view=view,
            links=tuple(links),
            patient_aliases=study.patient_aliases,
            series=tuple(
                SeriesPreview(
                    series_uid=s.series_uid,
                    modality=s.modality,
                    body_part=s.body_part,
                    description=s.description,
                    instance_count=s.instance_count,
                    preview_url=(
                        f"{base}/studies/{study.study_uid}/series/{s.series_uid}/thumbnail"
                        if s.preview_key
                        else None
                    ),
                    width=s.preview_width,
                    height=s.preview_height,
                )
                for s in study.series
            ),
        )
