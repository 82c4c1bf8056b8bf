"""Imaging studies as a patient carries them: what was scanned, when, where, and
the links (DICOMweb bases, viewer URLs) that open the images in a PACS cloud."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain.records.sources import RecordSource

LinkKind = Literal["dicomweb", "viewer", "other", "download"]

# Endpoint.connectionType codes (http://terminology.hl7.org/CodeSystem/endpoint-connection-type).
_DICOMWEB = {"dicom-wado-rs", "dicom-qido-rs", "dicom-stow-rs", "dicom-wado-uri"}
_VIEWER = {"ihe-iid", "direct-project", "hl7-fhir-rest"}


class ImagingLink(msgspec.Struct, frozen=True):
    kind: LinkKind
    url: str
    name: str | None = None


class ImagingStudyView(msgspec.Struct, frozen=True, kw_only=True):
    record_id: UUID
    study_uid: str | None
    started: datetime | None
    modalities: tuple[str, ...]
    body_sites: tuple[str, ...]
    description: str | None
    series_count: int | None
    instance_count: int | None
    source: RecordSource
    links: tuple[ImagingLink, ...]


class ImagingRecord(msgspec.Struct, frozen=True):
    """The stored facts imaging needs: a record's id, source, type, source id,
    date and resource."""

    record_id: UUID
    source: RecordSource
    resource_type: str
    source_resource_id: str
    effective_at: datetime | None
    resource: dict[str, Any]


def _codings_text(values: list[dict[str, Any]]) -> list[str]:
    """Display text of Codings or CodeableConcepts, without repeats."""
    out: list[str] = []
    for value in values:
        if "coding" in value or "text" in value:
            coding = (value.get("coding") or [{}])[0]
            text = value.get("text") or coding.get("display") or coding.get("code")
        else:
            text = value.get("display") or value.get("code")
        if text and str(text) not in out:
            out.append(str(text))
    return out


def _endpoint_link(endpoint: dict[str, Any]) -> ImagingLink | None:
    address = endpoint.get("address")
    if not isinstance(address, str) or not address.startswith(("https://", "http://")):
        return None
    code = (endpoint.get("connectionType") or {}).get("code")
    kind: LinkKind = "dicomweb" if code in _DICOMWEB else "viewer" if code in _VIEWER else "other"
    return ImagingLink(kind=kind, url=address, name=endpoint.get("name"))


def _reference_ids(refs: Any) -> list[str]:
    ids: list[str] = []
    for ref in refs or []:
        reference = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(reference, str) and reference.startswith("Endpoint/"):
            ids.append(reference.removeprefix("Endpoint/"))
    return ids


def study_views(
    records: list[ImagingRecord], *, content_url: dict[UUID, str] | None = None
) -> list[ImagingStudyView]:
    """Builds one view per ImagingStudy, resolving its Endpoint references (study
    and series level) against Endpoints from the same source. `content_url`
    gives a download link for studies made from the patient's own uploads."""
    endpoints = {
        (r.source.key, r.source_resource_id): r.resource
        for r in records
        if r.resource_type == "Endpoint"
    }
    views: list[ImagingStudyView] = []
    for record in records:
        if record.resource_type != "ImagingStudy":
            continue
        study = record.resource
        series = [s for s in study.get("series") or [] if isinstance(s, dict)]
        refs = _reference_ids(study.get("endpoint"))
        for s in series:
            refs += [r for r in _reference_ids(s.get("endpoint")) if r not in refs]
        links: list[ImagingLink] = []
        for ref in refs:
            endpoint = endpoints.get((record.source.key, ref))
            link = _endpoint_link(endpoint) if endpoint else None
            if link is not None and link not in links:
                links.append(link)
        if content_url and record.record_id in content_url:
            links.append(
                ImagingLink(
                    kind="download", url=content_url[record.record_id], name="Uploaded file"
                )
            )
        # Modalities read best as their DICOM codes (CT, MR, US), not displays.
        modality_codings = [m for m in study.get("modality") or [] if isinstance(m, dict)]
        modality_codings += [s["modality"] for s in series if isinstance(s.get("modality"), dict)]
        modalities: list[str] = []
        for coding in modality_codings:
            code = coding.get("code") or coding.get("display")
            if code and code not in modalities:
                modalities.append(str(code))
        body_sites = _codings_text(
            [s["bodySite"] for s in series if isinstance(s.get("bodySite"), dict)]
        )
        instances = study.get("numberOfInstances")
        if instances is None and series:
            counted = [s.get("numberOfInstances") for s in series]
            instances = (
                sum(c for c in counted if isinstance(c, int))
                if any(isinstance(c, int) for c in counted)
                else None
            )
        uid = next(
            (
                i.get("value", "").removeprefix("urn:oid:")
                for i in study.get("identifier") or []
                if isinstance(i, dict) and str(i.get("system", "")) == "urn:dicom:uid"
            ),
            None,
        )
        procedure = _codings_text(
            [p for p in study.get("procedureCode") or [] if isinstance(p, dict)]
        )
        views.append(
            ImagingStudyView(
                record_id=record.record_id,
                study_uid=uid,
                started=record.effective_at,
                modalities=tuple(modalities),
                body_sites=tuple(body_sites),
                description=study.get("description") or (procedure[0] if procedure else None),
                series_count=study.get("numberOfSeries", len(series) if series else None),
                instance_count=instances,
                source=record.source,
                links=tuple(links),
            )
        )
    views.sort(key=lambda v: (v.started is not None, v.started), reverse=True)
    return views
