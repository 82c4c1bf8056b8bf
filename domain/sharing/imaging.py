"""Imaging in a share: what travels inside the encrypted bundle for each study
phr stores (the patient's own CDs and files).

- Each series' preview (made by the worker) as an R4 `Media` resource (type
  image, the PNG as attachment data, `partOf` the ImagingStudy): a FHIR viewer
  shows it with nothing else to fetch, and it is inside the ciphertext like
  every other byte of the share.
- The built-in viewer as an `Endpoint` (connectionType `ihe-iid`, IHE Invoke
  Image Display) the ImagingStudy references, like a hospital's study links
  its PACS viewer. Its address carries a study-scoped link token bound to the
  share and its consent, valid until the share's end: it opens nothing alone,
  the recipient names themselves to open a session (domain.imaging.dicomweb), and every
  request is checked against the share, so revoking it ends the viewer."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.access import Permit
from domain.errors import NotFound
from domain.imaging.dicom import DICOM_CODES, DICOM_UID_SYSTEM
from domain.imaging.ports import ImagingStore, ViewerTokens
from domain.imaging.store import StoredSeries, StoredStudy, ViewerGrant
from domain.ports import BlobStore
from domain.sharing.scope import Candidate

# A preview larger than this (a huge secondary capture) is described, not carried:
# the bundle is fetched whole by the doctor's phone.
MAX_PREVIEW_BYTES = 1024 * 1024
# And all of a share's previews together: past this the rest are left out (the
# viewer link still shows every series), so a share of many studies stays a
# bundle a phone can fetch.
MAX_SHARE_PREVIEW_BYTES = 8 * 1024 * 1024
MEDIA_TYPES = "http://terminology.hl7.org/CodeSystem/media-type"
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"


class ShareLinkGrant(msgspec.Struct, frozen=True, kw_only=True):
    """What a share's viewer links are bound to."""

    share_id: UUID
    consent_id: UUID
    expires_at: datetime


class StudyExtras(msgspec.Struct, frozen=True, kw_only=True):
    """Resources a shared ImagingStudy brings along, and the reference to add to it."""

    endpoint_ref: str | None
    entries: tuple[dict[str, Any], ...]


def _entry_id(*parts: str) -> UUID:
    # Stable ids: the same study shared twice describes itself the same way.
    return uuid5(NAMESPACE_URL, "phr:" + ":".join(parts))


def viewer_endpoint(endpoint_id: UUID, url: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "id": str(endpoint_id),
        "status": "active",
        "connectionType": {"system": CONNECTION_TYPES, "code": "ihe-iid"},
        "name": "phr imaging viewer",
        "period": {"end": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "payloadType": [{"text": "DICOM"}],
        "payloadMimeType": ["text/html"],
        "address": url,
    }


def preview_media(
    media_id: UUID,
    series: StoredSeries,
    png: bytes,
    *,
    study_ref: str,
    patient_ref: str,
) -> dict[str, Any]:
    title = " · ".join(
        str(x) for x in (series.modality, series.description, series.body_part) if x
    ) or ("Series " + str(series.number or ""))
    media: dict[str, Any] = {
        "resourceType": "Media",
        "id": str(media_id),
        "identifier": [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{series.series_uid}"}],
        "status": "completed",
        "type": {"coding": [{"system": MEDIA_TYPES, "code": "image", "display": "Image"}]},
        "partOf": [{"reference": study_ref}],
        "subject": {"reference": patient_ref},
        "content": {
            "contentType": "image/png",
            "data": base64.b64encode(png).decode("ascii"),
            "title": f"Preview: {title}",
        },
        "frames": 1,
    }
    if series.modality:
        media["modality"] = {"coding": [{"system": DICOM_CODES, "code": series.modality}]}
    if series.body_part:
        media["bodySite"] = {"text": series.body_part}
    if series.preview_width and series.preview_height:
        media["width"], media["height"] = series.preview_width, series.preview_height
    return media


class _PreviewBudget:
    """The preview bytes a share may still carry, spent study by study."""

    def __init__(self, size: int):
        self._left = size

    def take(self, size: int) -> bool:
        if size > self._left:
            return False
        self._left -= size
        return True


class SharedImaging:
    def __init__(
        self,
        *,
        store: ImagingStore,
        blobs: BlobStore,
        viewer_tokens: ViewerTokens,
        public_url: str,
    ):
        self._store = store
        self._blobs = blobs
        self._viewer_tokens = viewer_tokens
        self._public_url = public_url.rstrip("/")

    async def extras(
        self, permit: Permit, records: list[Candidate], grant: ShareLinkGrant
    ) -> dict[UUID, StudyExtras]:
        """For each shared ImagingStudy record that is a study phr stores."""
        wanted = {r.id for r in records if r.resource_type == "ImagingStudy"}
        if not wanted:
            return {}
        studies = [s for s in await self._store.studies(permit) if s.record_id in wanted]
        budget = _PreviewBudget(MAX_SHARE_PREVIEW_BYTES)
        return {
            study.record_id: await self._study(permit, study, grant, budget)
            for study in studies
            if study.record_id is not None
        }

    async def _study(
        self, permit: Permit, study: StoredStudy, grant: ShareLinkGrant, budget: _PreviewBudget
    ) -> StudyExtras:
        assert study.record_id is not None
        record = str(study.record_id)
        token = self._viewer_tokens.seal(
            ViewerGrant(
                permit.patient_id,
                study.study_uid,
                int(grant.expires_at.timestamp()),
                share_id=grant.share_id,
                consent_id=grant.consent_id,
            )
        )
        endpoint_id = _entry_id(str(grant.share_id), record, "viewer")
        url = f"{self._public_url}/imaging/viewer#study={study.study_uid}&share={token}"
        entries: list[dict[str, Any]] = [viewer_endpoint(endpoint_id, url, grant.expires_at)]
        for series in study.series:
            if series.preview_key is None:
                continue  # not made yet: the viewer link shows the series anyway
            try:
                png = await self._blobs.read(series.preview_key)
            except NotFound:
                continue
            if len(png) > MAX_PREVIEW_BYTES or not budget.take(len(png)):
                continue
            entries.append(
                preview_media(
                    _entry_id(record, series.series_uid, "preview"),
                    series,
                    png,
                    study_ref=f"urn:uuid:{record}",
                    patient_ref=f"urn:uuid:{permit.patient_id}",
                )
            )
        return StudyExtras(endpoint_ref=f"urn:uuid:{endpoint_id}", entries=tuple(entries))
