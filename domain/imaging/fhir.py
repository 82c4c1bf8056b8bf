"""The FHIR ImagingStudy of a study phr stores, rebuilt from its rows: series
with their counts and instances, and no timestamps of ours, so equal rows give
equal bytes (a repeat upload leaves the record exactly as it was)."""

from __future__ import annotations

from typing import Any

from domain.imaging.dicom import DICOM_CODES, DICOM_UID_SYSTEM, first_value
from domain.imaging.store import StoredInstance, StoredStudy
from domain.records.self_reported import SELF_REPORTED_TAG
from domain.uploads.fhir_resources import dicom_started


def study_resource(study: StoredStudy, instances: list[StoredInstance]) -> dict[str, Any]:
    """The FHIR ImagingStudy for a stored study: series with their counts and
    instances. No timestamps of ours in it, so equal rows give equal bytes."""
    attributes = study.attributes
    by_series: dict[str, list[StoredInstance]] = {}
    for instance in instances:
        by_series.setdefault(instance.series_uid, []).append(instance)
    series_out: list[dict[str, Any]] = []
    modalities: list[dict[str, str]] = []
    for series in study.series:
        modality = {"system": DICOM_CODES, "code": series.modality or "OT"}
        if modality not in modalities:
            modalities.append(modality)
        item: dict[str, Any] = {
            "uid": series.series_uid,
            "modality": modality,
            "numberOfInstances": series.instance_count,
        }
        if series.number is not None:
            item["number"] = series.number
        if series.description:
            item["description"] = series.description
        if series.body_part:
            item["bodySite"] = {"display": series.body_part}
        item["instance"] = [
            {
                "uid": i.instance_uid,
                "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{i.sop_class_uid}"},
                **({"number": i.number} if i.number is not None and i.number >= 0 else {}),
            }
            for i in by_series.get(series.series_uid, [])
        ]
        series_out.append(item)
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": study.study_uid,
        "meta": {"tag": [dict(SELF_REPORTED_TAG)]},
        "identifier": [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study.study_uid}"}],
        "status": "available",
        "subject": {"type": "Patient", "display": "The patient (self-uploaded)"},
        "modality": modalities,
        "numberOfSeries": len(study.series),
        "numberOfInstances": study.instance_count,
        "series": series_out,
    }
    description = first_value(attributes, "00081030")
    if isinstance(description, str) and description.strip():
        resource["description"] = description.strip()[:256]
    started = dicom_started_from(attributes)
    if started:
        resource["started"] = started
    return resource


def dicom_started_from(attributes: dict[str, Any]) -> str | None:
    from domain.uploads.upload import DicomHeader

    def text(tag: str) -> str | None:
        value = first_value(attributes, tag)
        return str(value) if value is not None else None

    return dicom_started(
        DicomHeader(
            study_uid="-",
            series_uid="-",
            study_date=text("00080020"),
            study_time=text("00080030"),
            timezone_offset=text("00080201"),
        )
    )
