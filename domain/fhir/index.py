"""The fields phr indexes of one validated resource (type, category, code,
date, display, value, status), for timelines, filters and search."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from domain.fhir import datatypes as t
from domain.fhir import resources as r
from domain.fhir.datatypes import parse_fhir_datetime


class IndexedFields(msgspec.Struct, frozen=True):
    """What phr indexes of one resource, for timelines, filters and search."""

    resource_type: str
    source_id: str | None
    category: str | None
    code_system: str | None
    code: str | None
    display: str | None
    effective_at: datetime | None
    status: str | None
    value: str | None
    unit: str | None
    version_id: str | None
    last_updated: datetime | None


def _first_coding(concept: t.CodeableConcept | None) -> t.Coding | None:
    if concept is None or not concept.coding:
        return None
    return next((c for c in concept.coding if c.code), concept.coding[0])


def _concept_text(concept: t.CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display:
            return coding.display
    return None


def _concept_code(concept: t.CodeableConcept | None) -> str | None:
    coding = _first_coding(concept)
    return coding.code if coding else None


def _first(items: list | None) -> Any:
    return items[0] if items else None


def _when(*candidates: str | None) -> datetime | None:
    for text in candidates:
        if text:
            return parse_fhir_datetime(text)
    return None


def _period_start(period: t.Period | None) -> str | None:
    return period.start if period else None


def _number(value: Any) -> str | None:
    """A JSON number as the source wrote it ("5" stays "5", "5.0" stays "5.0")."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return repr(value) if isinstance(value, float) else str(value)


def _raw_number(raw: dict, element: str) -> Any:
    holder = raw.get(element)
    return holder.get("value") if isinstance(holder, dict) else None


class _Summary(msgspec.Struct, kw_only=True):
    category: str | None = None
    concept: t.CodeableConcept | None = None
    coding: t.Coding | None = None
    display: str | None = None
    effective_at: datetime | None = None
    status: str | None = None
    value: str | None = None
    unit: str | None = None


def _summarize(res: r.Resource, raw: dict) -> _Summary:
    match res:
        case r.Observation():
            value, unit = _observation_value(res, raw)
            return _Summary(
                category=_concept_code(_first(res.category)),
                concept=res.code,
                effective_at=_when(
                    res.effective_date_time,
                    _period_start(res.effective_period),
                    res.effective_instant,
                    _first(res.effective_timing.event) if res.effective_timing else None,
                    res.issued,
                ),
                status=res.status,
                value=value,
                unit=unit,
            )
        case r.DiagnosticReport():
            return _Summary(
                category=_concept_code(_first(res.category)),
                concept=res.code,
                effective_at=_when(
                    res.effective_date_time, _period_start(res.effective_period), res.issued
                ),
                status=res.status,
                display=_concept_text(res.code) or res.conclusion,
            )
        case r.ImagingStudy():
            procedure = _first(res.procedure_code)
            modality = _first(res.modality) or (res.series[0].modality if res.series else None)
            return _Summary(
                category=modality.code if modality else None,
                concept=procedure,
                coding=None if procedure else modality,
                display=res.description
                or _concept_text(procedure)
                or (res.series[0].description if res.series else None),
                effective_at=_when(res.started, res.series[0].started if res.series else None),
                status=res.status,
            )
        case r.MedicationRequest():
            return _Summary(
                category=_concept_code(_first(res.category)),
                concept=_medication(res.medication_codeable_concept, res.medication_reference, raw),
                display=_medication_display(
                    res.medication_codeable_concept, res.medication_reference
                ),
                effective_at=_when(res.authored_on),
                status=res.status,
            )
        case r.MedicationDispense():
            return _Summary(
                category=_concept_code(res.category),
                concept=_medication(res.medication_codeable_concept, res.medication_reference, raw),
                display=_medication_display(
                    res.medication_codeable_concept, res.medication_reference
                ),
                effective_at=_when(res.when_handed_over, res.when_prepared),
                status=res.status,
                value=_number(_raw_number(raw, "quantity")),
                unit=(res.quantity.unit or res.quantity.code) if res.quantity else None,
            )
        case r.MedicationStatement():
            return _Summary(
                category=_concept_code(res.category),
                concept=_medication(res.medication_codeable_concept, res.medication_reference, raw),
                display=_medication_display(
                    res.medication_codeable_concept, res.medication_reference
                ),
                effective_at=_when(
                    res.effective_date_time,
                    _period_start(res.effective_period),
                    res.date_asserted,
                ),
                status=res.status,
            )
        case r.Condition():
            return _Summary(
                category=_concept_code(_first(res.category)),
                concept=res.code,
                effective_at=_when(
                    res.onset_date_time, _period_start(res.onset_period), res.recorded_date
                ),
                status=_concept_code(res.clinical_status),
            )
        case r.AllergyIntolerance():
            return _Summary(
                category=_first(res.category),
                concept=res.code,
                effective_at=_when(
                    res.recorded_date, res.onset_date_time, _period_start(res.onset_period)
                ),
                status=_concept_code(res.clinical_status),
            )
        case r.Immunization():
            return _Summary(
                concept=res.vaccine_code,
                effective_at=_when(res.occurrence_date_time, res.recorded),
                status=res.status,
            )
        case r.Procedure():
            return _Summary(
                category=_concept_code(res.category),
                concept=res.code,
                effective_at=_when(res.performed_date_time, _period_start(res.performed_period)),
                status=res.status,
            )
        case r.Encounter():
            kind = _first(res.type)
            cls = res.encounter_class
            return _Summary(
                category=cls.code,
                concept=kind,
                coding=None if kind else cls,
                display=_concept_text(kind) or cls.display or cls.code,
                effective_at=_when(_period_start(res.period)),
                status=res.status,
            )
        case r.DocumentReference():
            context_period = res.context.period if res.context else None
            return _Summary(
                category=_concept_code(_first(res.category)),
                concept=res.type,
                display=_concept_text(res.type) or res.description,
                effective_at=_when(res.date, _period_start(context_period)),
                status=res.status,
            )
        case r.Patient():
            return _Summary(display=_person_name(res.name))
    return _loose_summary(raw)


def _observation_value(obs: r.Observation, raw: dict) -> tuple[str | None, str | None]:
    if obs.value_quantity is not None:
        q = obs.value_quantity
        return _number(_raw_number(raw, "valueQuantity")), q.unit or q.code
    if obs.value_string is not None:
        return obs.value_string, None
    if obs.value_codeable_concept is not None:
        return _concept_text(obs.value_codeable_concept) or _concept_code(
            obs.value_codeable_concept
        ), None
    if obs.value_integer is not None:
        return str(obs.value_integer), None
    if obs.value_boolean is not None:
        return "true" if obs.value_boolean else "false", None
    return None, None


def _medication(
    concept: t.CodeableConcept | None, reference: t.Reference | None, raw: dict
) -> t.CodeableConcept | None:
    """The drug's concept: given inline, or the code of the contained Medication that
    a "#id" reference points to (how most prescriptions in the wild carry it)."""
    if concept is not None or reference is None or not reference.reference:
        return concept
    if not reference.reference.startswith("#"):
        return None
    wanted = reference.reference[1:]
    contained = raw.get("contained")
    for item in contained if isinstance(contained, list) else []:
        if (
            isinstance(item, dict)
            and item.get("id") == wanted
            and item.get("resourceType") == "Medication"
            and isinstance(item.get("code"), dict)
        ):
            try:
                return msgspec.convert(item["code"], t.CodeableConcept)
            except msgspec.ValidationError:
                return None
    return None


def _medication_display(
    concept: t.CodeableConcept | None, reference: t.Reference | None
) -> str | None:
    return _concept_text(concept) or (reference.display if reference else None)


def _person_name(names: list[t.HumanName] | None) -> str | None:
    for name in names or []:
        if name.text:
            return name.text
        parts = [*(name.given or []), *([name.family] if name.family else [])]
        if parts:
            return " ".join(parts)
    return None


# For the types phr does not declare element by element: the usual places of a code,
# a status and a date. Read defensively; a shape we do not expect is simply not indexed.
_LOOSE_CONCEPTS = ("code", "type", "vaccineCode")
_LOOSE_DATES = (
    "effectiveDateTime",
    "occurrenceDateTime",
    "performedDateTime",
    "authoredOn",
    "date",
    "created",
    "recorded",
    "issued",
    "startDate",
    "period",
    "effectivePeriod",
    "occurrencePeriod",
    "performedPeriod",
)


def _loose_summary(raw: dict) -> _Summary:
    concept = None
    for key in _LOOSE_CONCEPTS:
        candidate = raw.get(key)
        if isinstance(candidate, list):
            candidate = candidate[0] if candidate else None
        if isinstance(candidate, dict):
            try:
                concept = msgspec.convert(candidate, t.CodeableConcept)
                break
            except msgspec.ValidationError:
                continue
    when = None
    for key in _LOOSE_DATES:
        candidate = raw.get(key)
        if isinstance(candidate, dict):
            candidate = candidate.get("start")
        if isinstance(candidate, str) and (when := parse_fhir_datetime(candidate)):
            break
    status = raw.get("status")
    category = None
    cat = raw.get("category")
    if isinstance(cat, list):
        cat = cat[0] if cat else None
    if isinstance(cat, dict):
        try:
            category = _concept_code(msgspec.convert(cat, t.CodeableConcept))
        except msgspec.ValidationError:
            category = None
    display = _concept_text(concept)
    name = raw.get("name")
    if display is None and isinstance(name, str):
        display = name  # Organization, Location, Device...
    elif display is None and isinstance(name, list):
        try:
            display = _person_name(msgspec.convert(name, list[t.HumanName]))
        except msgspec.ValidationError:
            display = None
    return _Summary(
        category=category,
        concept=concept,
        display=display,
        effective_at=when,
        status=status if isinstance(status, str) else None,
    )


def index_fields(res: r.Resource, raw: dict) -> IndexedFields:
    summary = _summarize(res, raw)
    coding = summary.coding or _first_coding(summary.concept)
    display = summary.display
    if display is None:
        display = _concept_text(summary.concept) or (coding.display if coding else None)
    meta = res.meta
    return IndexedFields(
        resource_type=res.resource_type,
        source_id=res.id,
        category=summary.category,
        code_system=coding.system if coding else None,
        code=coding.code if coding else None,
        display=display,
        effective_at=summary.effective_at,
        status=summary.status,
        value=summary.value,
        unit=summary.unit,
        version_id=meta.version_id if meta else None,
        last_updated=_when(meta.last_updated) if meta else None,
    )
