"""The webhook body: {type, data}, a tagged union on `type`."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

PatientRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
CodeText = Annotated[str, msgspec.Meta(max_length=32)]


class PatientLinkedData(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    code: CodeText
    patient_ref: PatientRef


class RecordsPushData(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    patient_ref: PatientRef
    bundle: dict[str, Any]


class PatientLinkedEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="patient.linked"
):
    data: PatientLinkedData


class RecordsPushEvent(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="records.push"
):
    data: RecordsPushData


WebhookEvent = PatientLinkedEvent | RecordsPushEvent
