"""Which element names FHIR R4 defines, for the resource types a patient may enter
and the data types they use, and a walk that names every element a resource has
beyond them.

FHIR JSON allows no unknown elements: anything extra travels in an `extension`.
phr's validation models only what it indexes, so without this a typo
(`valueQuantiy`) or junk (`"__main__": {...}`) would be stored silently and the
value would never reach the timeline. The tables list every element of R4 (4.0.1)
for these types; a choice element `value[x]` is listed with the types it may take.

PATIENT_REPORTABLE_TYPES is the documented list of what a patient may enter
themself: observations (a home blood pressure, a weight), conditions, allergies,
medication statements, immunizations and documents. Everything else (results,
orders, encounters, procedures, imaging) comes from a hospital."""

from __future__ import annotations

from typing import Any

PATIENT_REPORTABLE_TYPES: frozenset[str] = frozenset(
    {
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "MedicationStatement",
        "Immunization",
        "DocumentReference",
    }
)

# An element's type: a data type's name (walked with its table), a nested table
# (a backbone element), or "" for a primitive (nothing inside to walk).
Shape = dict[str, Any]
_P = ""  # primitive

_ELEMENT: Shape = {"id": _P, "extension": "Extension"}
_BACKBONE: Shape = {**_ELEMENT, "modifierExtension": "Extension"}

DATA_TYPES: dict[str, Shape] = {
    "Extension": {**_ELEMENT, "url": _P},  # value[x] is any type: see _choice
    "Coding": {
        **_ELEMENT,
        "system": _P,
        "version": _P,
        "code": _P,
        "display": _P,
        "userSelected": _P,
    },
    "CodeableConcept": {**_ELEMENT, "coding": "Coding", "text": _P},
    "Quantity": {**_ELEMENT, "value": _P, "comparator": _P, "unit": _P, "system": _P, "code": _P},
    "Period": {**_ELEMENT, "start": _P, "end": _P},
    "Range": {**_ELEMENT, "low": "Quantity", "high": "Quantity"},
    "Ratio": {**_ELEMENT, "numerator": "Quantity", "denominator": "Quantity"},
    "Identifier": {
        **_ELEMENT,
        "use": _P,
        "type": "CodeableConcept",
        "system": _P,
        "value": _P,
        "period": "Period",
        "assigner": "Reference",
    },
    "Reference": {
        **_ELEMENT,
        "reference": _P,
        "type": _P,
        "identifier": "Identifier",
        "display": _P,
    },
    "Annotation": {
        **_ELEMENT,
        "authorReference": "Reference",
        "authorString": _P,
        "time": _P,
        "text": _P,
    },
    "Attachment": {
        **_ELEMENT,
        "contentType": _P,
        "language": _P,
        "data": _P,
        "url": _P,
        "size": _P,
        "hash": _P,
        "title": _P,
        "creation": _P,
    },
    "SampledData": {
        **_ELEMENT,
        "origin": "Quantity",
        "period": _P,
        "factor": _P,
        "lowerLimit": _P,
        "upperLimit": _P,
        "dimensions": _P,
        "data": _P,
    },
    "Timing": {
        **_BACKBONE,
        "event": _P,
        "repeat": {
            **_ELEMENT,
            "boundsDuration": "Quantity",
            "boundsRange": "Range",
            "boundsPeriod": "Period",
            "count": _P,
            "countMax": _P,
            "duration": _P,
            "durationMax": _P,
            "durationUnit": _P,
            "frequency": _P,
            "frequencyMax": _P,
            "period": _P,
            "periodMax": _P,
            "periodUnit": _P,
            "dayOfWeek": _P,
            "timeOfDay": _P,
            "when": _P,
            "offset": _P,
        },
        "code": "CodeableConcept",
    },
    "Dosage": {
        **_BACKBONE,
        "sequence": _P,
        "text": _P,
        "additionalInstruction": "CodeableConcept",
        "patientInstruction": _P,
        "timing": "Timing",
        "asNeededBoolean": _P,
        "asNeededCodeableConcept": "CodeableConcept",
        "site": "CodeableConcept",
        "route": "CodeableConcept",
        "method": "CodeableConcept",
        "doseAndRate": {
            **_ELEMENT,
            "type": "CodeableConcept",
            "doseRange": "Range",
            "doseQuantity": "Quantity",
            "rateRatio": "Ratio",
            "rateRange": "Range",
            "rateQuantity": "Quantity",
        },
        "maxDosePerPeriod": "Ratio",
        "maxDosePerAdministration": "Quantity",
        "maxDosePerLifetime": "Quantity",
    },
    "Meta": {
        **_ELEMENT,
        "versionId": _P,
        "lastUpdated": _P,
        "source": _P,
        "profile": _P,
        "security": "Coding",
        "tag": "Coding",
    },
    "Narrative": {**_ELEMENT, "status": _P, "div": _P},
}

# value[x] of an extension may be any FHIR type; these are walked, others are primitives.
_ANY_VALUE = {f"value{name}": name for name in DATA_TYPES if name != "Extension"} | {
    f"value{name}": "Quantity" for name in ("Age", "Distance", "Duration", "Count", "Money")
}

_DOMAIN_RESOURCE: Shape = {
    "resourceType": _P,
    "id": _P,
    "meta": "Meta",
    "implicitRules": _P,
    "language": _P,
    "text": "Narrative",
    "contained": "Resource",
    "extension": "Extension",
    "modifierExtension": "Extension",
}

_REFERENCE_RANGE: Shape = {
    **_BACKBONE,
    "low": "Quantity",
    "high": "Quantity",
    "type": "CodeableConcept",
    "appliesTo": "CodeableConcept",
    "age": "Range",
    "text": _P,
}
_OBSERVATION_VALUE: Shape = {
    "valueQuantity": "Quantity",
    "valueCodeableConcept": "CodeableConcept",
    "valueString": _P,
    "valueBoolean": _P,
    "valueInteger": _P,
    "valueRange": "Range",
    "valueRatio": "Ratio",
    "valueSampledData": "SampledData",
    "valueTime": _P,
    "valueDateTime": _P,
    "valuePeriod": "Period",
}
_ONSET = {"DateTime": _P, "Age": "Quantity", "Period": "Period", "Range": "Range", "String": _P}

RESOURCES: dict[str, Shape] = {
    "Observation": {
        **_DOMAIN_RESOURCE,
        "identifier": "Identifier",
        "basedOn": "Reference",
        "partOf": "Reference",
        "status": _P,
        "category": "CodeableConcept",
        "code": "CodeableConcept",
        "subject": "Reference",
        "focus": "Reference",
        "encounter": "Reference",
        "effectiveDateTime": _P,
        "effectivePeriod": "Period",
        "effectiveTiming": "Timing",
        "effectiveInstant": _P,
        "issued": _P,
        "performer": "Reference",
        **_OBSERVATION_VALUE,
        "dataAbsentReason": "CodeableConcept",
        "interpretation": "CodeableConcept",
        "note": "Annotation",
        "bodySite": "CodeableConcept",
        "method": "CodeableConcept",
        "specimen": "Reference",
        "device": "Reference",
        "referenceRange": _REFERENCE_RANGE,
        "hasMember": "Reference",
        "derivedFrom": "Reference",
        "component": {
            **_BACKBONE,
            "code": "CodeableConcept",
            **_OBSERVATION_VALUE,
            "dataAbsentReason": "CodeableConcept",
            "interpretation": "CodeableConcept",
            "referenceRange": _REFERENCE_RANGE,
        },
    },
    "Condition": {
        **_DOMAIN_RESOURCE,
        "identifier": "Identifier",
        "clinicalStatus": "CodeableConcept",
        "verificationStatus": "CodeableConcept",
        "category": "CodeableConcept",
        "severity": "CodeableConcept",
        "code": "CodeableConcept",
        "bodySite": "CodeableConcept",
        "subject": "Reference",
        "encounter": "Reference",
        **{f"onset{k}": v for k, v in _ONSET.items()},
        **{f"abatement{k}": v for k, v in _ONSET.items()},
        "recordedDate": _P,
        "recorder": "Reference",
        "asserter": "Reference",
        "stage": {
            **_BACKBONE,
            "summary": "CodeableConcept",
            "assessment": "Reference",
            "type": "CodeableConcept",
        },
        "evidence": {**_BACKBONE, "code": "CodeableConcept", "detail": "Reference"},
        "note": "Annotation",
    },
    "AllergyIntolerance": {
        **_DOMAIN_RESOURCE,
        "identifier": "Identifier",
        "clinicalStatus": "CodeableConcept",
        "verificationStatus": "CodeableConcept",
        "type": _P,
        "category": _P,
        "criticality": _P,
        "code": "CodeableConcept",
        "patient": "Reference",
        "encounter": "Reference",
        **{f"onset{k}": v for k, v in _ONSET.items()},
        "recordedDate": _P,
        "recorder": "Reference",
        "asserter": "Reference",
        "lastOccurrence": _P,
        "note": "Annotation",
        "reaction": {
            **_BACKBONE,
            "substance": "CodeableConcept",
            "manifestation": "CodeableConcept",
            "description": _P,
            "onset": _P,
            "severity": _P,
            "exposureRoute": "CodeableConcept",
            "note": "Annotation",
        },
    },
    "MedicationStatement": {
        **_DOMAIN_RESOURCE,
        "identifier": "Identifier",
        "basedOn": "Reference",
        "partOf": "Reference",
        "status": _P,
        "statusReason": "CodeableConcept",
        "category": "CodeableConcept",
        "medicationCodeableConcept": "CodeableConcept",
        "medicationReference": "Reference",
        "subject": "Reference",
        "context": "Reference",
        "effectiveDateTime": _P,
        "effectivePeriod": "Period",
        "dateAsserted": _P,
        "informationSource": "Reference",
        "derivedFrom": "Reference",
        "reasonCode": "CodeableConcept",
        "reasonReference": "Reference",
        "note": "Annotation",
        "dosage": "Dosage",
    },
    "Immunization": {
        **_DOMAIN_RESOURCE,
        "identifier": "Identifier",
        "status": _P,
        "statusReason": "CodeableConcept",
        "vaccineCode": "CodeableConcept",
        "patient": "Reference",
        "encounter": "Reference",
        "occurrenceDateTime": _P,
        "occurrenceString": _P,
        "recorded": _P,
        "primarySource": _P,
        "reportOrigin": "CodeableConcept",
        "location": "Reference",
        "manufacturer": "Reference",
        "lotNumber": _P,
        "expirationDate": _P,
        "site": "CodeableConcept",
        "route": "CodeableConcept",
        "doseQuantity": "Quantity",
        "performer": {**_BACKBONE, "function": "CodeableConcept", "actor": "Reference"},
        "note": "Annotation",
        "reasonCode": "CodeableConcept",
        "reasonReference": "Reference",
        "isSubpotent": _P,
        "subpotentReason": "CodeableConcept",
        "education": {
            **_BACKBONE,
            "documentType": _P,
            "reference": _P,
            "publicationDate": _P,
            "presentationDate": _P,
        },
        "programEligibility": "CodeableConcept",
        "fundingSource": "CodeableConcept",
        "reaction": {**_BACKBONE, "date": _P, "detail": "Reference", "reported": _P},
        "protocolApplied": {
            **_BACKBONE,
            "series": _P,
            "authority": "Reference",
            "targetDisease": "CodeableConcept",
            "doseNumberPositiveInt": _P,
            "doseNumberString": _P,
            "seriesDosesPositiveInt": _P,
            "seriesDosesString": _P,
        },
    },
    "DocumentReference": {
        **_DOMAIN_RESOURCE,
        "masterIdentifier": "Identifier",
        "identifier": "Identifier",
        "status": _P,
        "docStatus": _P,
        "type": "CodeableConcept",
        "category": "CodeableConcept",
        "subject": "Reference",
        "date": _P,
        "author": "Reference",
        "authenticator": "Reference",
        "custodian": "Reference",
        "relatesTo": {**_BACKBONE, "code": _P, "target": "Reference"},
        "description": _P,
        "securityLabel": "CodeableConcept",
        "content": {**_BACKBONE, "attachment": "Attachment", "format": "Coding"},
        "context": {
            **_BACKBONE,
            "encounter": "Reference",
            "event": "CodeableConcept",
            "period": "Period",
            "facilityType": "CodeableConcept",
            "practiceSetting": "CodeableConcept",
            "sourcePatientInfo": "Reference",
            "related": "Reference",
        },
    },
}


def checks_elements_of(resource_type: Any) -> bool:
    """Whether phr knows every element name of this type (and so can name extras)."""
    return resource_type in RESOURCES


def unknown_elements(resource: dict[str, Any]) -> list[str]:
    """Paths (e.g. `valueQuantiy`, `component[1].code.codng`) of every element
    that FHIR R4 does not define at its place. Empty for types not catalogued."""
    shape = RESOURCES.get(resource.get("resourceType"))  # type: ignore[arg-type]
    if shape is None:
        return []
    found: list[str] = []
    _walk(resource, shape, "", found)
    return found


def _walk(node: dict[str, Any], shape: Shape, path: str, found: list[str]) -> None:
    is_extension = shape is DATA_TYPES["Extension"]
    for name, value in node.items():
        where = f"{path}.{name}" if path else name
        if name.startswith("_") and name[1:] in shape and shape[name[1:]] == _P:
            # A primitive's id and extensions (FHIR JSON's `_name` sibling).
            for index, item in _items(value):
                if isinstance(item, dict):
                    _walk(item, _ELEMENT, _at(where, index), found)
            continue
        kind = shape.get(name)
        if kind is None and is_extension and name.startswith("value"):
            kind = _ANY_VALUE.get(name, _P)
        if kind is None:
            found.append(where)
            continue
        for index, item in _items(value):
            if not isinstance(item, dict):
                continue  # a primitive (or a type error the validator reports)
            if kind == "Resource":
                inner = RESOURCES.get(item.get("resourceType"))
                if inner is not None:
                    _walk(item, inner, _at(where, index), found)
            elif isinstance(kind, dict):
                _walk(item, kind, _at(where, index), found)
            elif kind:
                _walk(item, DATA_TYPES[kind], _at(where, index), found)


def _items(value: Any) -> list[tuple[int | None, Any]]:
    if isinstance(value, list):
        return list(enumerate(value))
    return [(None, value)]


def _at(path: str, index: int | None) -> str:
    return path if index is None else f"{path}[{index}]"
