"""The shared content: a FHIR R4 `collection` Bundle of the records in scope,
with a minimal Patient and the Organizations (hospitals) they came from.
Uploaded files up to 5 MiB travel inside it as attachment data; larger ones are
described by their metadata only (their URLs need the patient's token)."""

from __future__ import annotations

import base64
import copy
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.sharing.imaging import StudyExtras
from domain.sharing.scope import Candidate

MAX_INLINE_FILE_BYTES = 5 * 1024 * 1024


def should_inline(record: Candidate) -> bool:
    return (
        record.file_key is not None
        and record.file_size is not None
        and record.file_size <= MAX_INLINE_FILE_BYTES
        and record.resource_type == "DocumentReference"
    )


def _with_file(resource: dict[str, Any], data: bytes | None) -> dict[str, Any]:
    resource = copy.deepcopy(resource)
    for content in resource.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if not isinstance(attachment, dict):
            continue
        attachment.pop("url", None)
        if data is not None:
            attachment["data"] = base64.b64encode(data).decode("ascii")
    return resource


def share_bundle(
    *,
    bundle_id: UUID,
    timestamp: datetime,
    patient_id: UUID,
    patient: dict[str, Any],
    organizations: dict[UUID, str],
    records: list[Candidate],
    files: dict[UUID, bytes],
    imaging: dict[UUID, StudyExtras] | None = None,
) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"urn:uuid:{patient_id}", "resource": patient},
    ]
    for hospital_id, name in sorted(organizations.items(), key=lambda item: str(item[0])):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{hospital_id}",
                "resource": {"resourceType": "Organization", "id": str(hospital_id), "name": name},
            }
        )
    for record in records:
        resource = record.resource
        if record.file_key is not None:
            resource = _with_file(resource, files.get(record.id))
        resource = {**resource, "id": str(record.id)}
        extras = (imaging or {}).get(record.id)
        if extras is not None and extras.endpoint_ref is not None:
            endpoints = [e for e in resource.get("endpoint") or [] if isinstance(e, dict)]
            resource["endpoint"] = [*endpoints, {"reference": extras.endpoint_ref}]
        entries.append({"fullUrl": f"urn:uuid:{record.id}", "resource": resource})
        for extra in extras.entries if extras is not None else ():
            entries.append({"fullUrl": f"urn:uuid:{extra['id']}", "resource": extra})
    return {
        "resourceType": "Bundle",
        "id": str(bundle_id),
        "type": "collection",
        "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entry": entries,
    }


def minimal_patient(patient_id: UUID, known: dict[str, Any] | None, display_name: str | None):
    """Name, gender and birth date from the newest Patient resource a hospital
    sent, if any; otherwise the account's display name. Nothing else."""
    patient: dict[str, Any] = {"resourceType": "Patient", "id": str(patient_id)}
    if known:
        for field in ("name", "gender", "birthDate"):
            if field in known:
                patient[field] = known[field]
    if "name" not in patient and display_name:
        patient["name"] = [{"text": display_name}]
    return patient
