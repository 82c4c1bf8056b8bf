"""msgspec shapes of the FHIR R4 (4.0.1) resources phr validates field by field.

Each Struct declares only the elements phr reads or that R4 makes required; any other
element is accepted untouched (FHIR resources carry many, and extensions add more),
so the Structs never forbid unknown fields. What they declare they check strictly:
cardinality 1..1 / 1..* as required fields, JSON value types, required-binding codes
as Literals, and dates in the FHIR date / dateTime / instant formats (through
`decode_fhir_scalar`, the `dec_hook` given to `msgspec.convert`).

Choice elements (`value[x]`, `effective[x]`, ...) are declared one field per variant
phr reads; that at most one variant is present, and that a required one is present,
is checked in validation.py from `CHOICES`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from domain.fhir.datatypes import (
    Annotation,
    Attachment,
    CodeableConcept,
    Coding,
    Dosage,
    Element,
    FhirDate,
    FhirDateTime,
    FhirInstant,
    HumanName,
    Meta,
    Period,
    Quantity,
    Range,
    Ratio,
    Reference,
    Timing,
)

# --- resources ------------------------------------------------------------------


class Resource(Element, kw_only=True):
    resource_type: str
    id: str | None = None
    meta: Meta | None = None

    # Choice elements of this type: base name -> required?
    CHOICES: ClassVar[dict[str, bool]] = {}


class Patient(Resource, kw_only=True):
    """Demographics; kept, lightly checked."""

    active: bool | None = None
    name: list[HumanName] | None = None
    gender: Literal["male", "female", "other", "unknown"] | None = None
    birth_date: FhirDate | None = None
    deceased_boolean: bool | None = None
    deceased_date_time: FhirDateTime | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"deceased": False, "multipleBirth": False}


ObservationStatus = Literal[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
]


class ObservationComponent(Element, kw_only=True):
    code: CodeableConcept
    value_quantity: Quantity | None = None
    value_codeable_concept: CodeableConcept | None = None
    value_string: str | None = None
    value_boolean: bool | None = None
    value_integer: int | None = None
    value_range: Range | None = None
    value_ratio: Ratio | None = None
    value_date_time: FhirDateTime | None = None
    value_period: Period | None = None
    data_absent_reason: CodeableConcept | None = None
    interpretation: list[CodeableConcept] | None = None


class Observation(Resource, kw_only=True):
    status: ObservationStatus
    category: list[CodeableConcept] | None = None
    code: CodeableConcept
    subject: Reference | None = None
    encounter: Reference | None = None
    effective_date_time: FhirDateTime | None = None
    effective_period: Period | None = None
    effective_timing: Timing | None = None
    effective_instant: FhirInstant | None = None
    issued: FhirInstant | None = None
    performer: list[Reference] | None = None
    value_quantity: Quantity | None = None
    value_codeable_concept: CodeableConcept | None = None
    value_string: str | None = None
    value_boolean: bool | None = None
    value_integer: int | None = None
    value_range: Range | None = None
    value_ratio: Ratio | None = None
    value_sampled_data: dict[str, Any] | None = None
    value_time: str | None = None
    value_date_time: FhirDateTime | None = None
    value_period: Period | None = None
    data_absent_reason: CodeableConcept | None = None
    interpretation: list[CodeableConcept] | None = None
    note: list[Annotation] | None = None
    has_member: list[Reference] | None = None
    derived_from: list[Reference] | None = None
    component: list[ObservationComponent] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"effective": False, "value": False}


class DiagnosticReport(Resource, kw_only=True):
    status: Literal[
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    ]
    category: list[CodeableConcept] | None = None
    code: CodeableConcept
    subject: Reference | None = None
    encounter: Reference | None = None
    effective_date_time: FhirDateTime | None = None
    effective_period: Period | None = None
    issued: FhirInstant | None = None
    performer: list[Reference] | None = None
    result: list[Reference] | None = None
    imaging_study: list[Reference] | None = None
    conclusion: str | None = None
    conclusion_code: list[CodeableConcept] | None = None
    presented_form: list[Attachment] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"effective": False}


class ImagingInstance(Element, kw_only=True):
    uid: str
    sop_class: Coding
    number: int | None = None
    title: str | None = None


class ImagingSeries(Element, kw_only=True):
    uid: str
    number: int | None = None
    modality: Coding
    description: str | None = None
    number_of_instances: int | None = None
    body_site: Coding | None = None
    started: FhirDateTime | None = None
    instance: list[ImagingInstance] | None = None


class ImagingStudy(Resource, kw_only=True):
    status: Literal["registered", "available", "cancelled", "entered-in-error", "unknown"]
    modality: list[Coding] | None = None
    subject: Reference
    encounter: Reference | None = None
    started: FhirDateTime | None = None
    endpoint: list[Reference] | None = None
    number_of_series: int | None = None
    number_of_instances: int | None = None
    procedure_code: list[CodeableConcept] | None = None
    description: str | None = None
    series: list[ImagingSeries] | None = None


class MedicationRequest(Resource, kw_only=True):
    status: Literal[
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    ]
    status_reason: CodeableConcept | None = None
    intent: Literal[
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    ]
    category: list[CodeableConcept] | None = None
    priority: Literal["routine", "urgent", "asap", "stat"] | None = None
    do_not_perform: bool | None = None
    medication_codeable_concept: CodeableConcept | None = None
    medication_reference: Reference | None = None
    subject: Reference
    encounter: Reference | None = None
    authored_on: FhirDateTime | None = None
    requester: Reference | None = None
    dosage_instruction: list[Dosage] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"medication": True, "reported": False}


class MedicationDispense(Resource, kw_only=True):
    status: Literal[
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "declined",
        "unknown",
    ]
    category: CodeableConcept | None = None
    medication_codeable_concept: CodeableConcept | None = None
    medication_reference: Reference | None = None
    subject: Reference | None = None
    quantity: Quantity | None = None
    days_supply: Quantity | None = None
    when_prepared: FhirDateTime | None = None
    when_handed_over: FhirDateTime | None = None
    dosage_instruction: list[Dosage] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"medication": True, "statusReason": False}


class MedicationStatement(Resource, kw_only=True):
    status: Literal[
        "active",
        "completed",
        "entered-in-error",
        "intended",
        "stopped",
        "on-hold",
        "unknown",
        "not-taken",
    ]
    category: CodeableConcept | None = None
    medication_codeable_concept: CodeableConcept | None = None
    medication_reference: Reference | None = None
    subject: Reference
    effective_date_time: FhirDateTime | None = None
    effective_period: Period | None = None
    date_asserted: FhirDateTime | None = None
    dosage: list[Dosage] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"medication": True, "effective": False}


class Condition(Resource, kw_only=True):
    clinical_status: CodeableConcept | None = None
    verification_status: CodeableConcept | None = None
    category: list[CodeableConcept] | None = None
    severity: CodeableConcept | None = None
    code: CodeableConcept | None = None
    body_site: list[CodeableConcept] | None = None
    subject: Reference
    encounter: Reference | None = None
    onset_date_time: FhirDateTime | None = None
    onset_age: Quantity | None = None
    onset_period: Period | None = None
    onset_range: Range | None = None
    onset_string: str | None = None
    abatement_date_time: FhirDateTime | None = None
    abatement_age: Quantity | None = None
    abatement_period: Period | None = None
    abatement_range: Range | None = None
    abatement_string: str | None = None
    recorded_date: FhirDateTime | None = None
    note: list[Annotation] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"onset": False, "abatement": False}


class AllergyReaction(Element, kw_only=True):
    substance: CodeableConcept | None = None
    manifestation: list[CodeableConcept]
    description: str | None = None
    onset: FhirDateTime | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None


class AllergyIntolerance(Resource, kw_only=True):
    clinical_status: CodeableConcept | None = None
    verification_status: CodeableConcept | None = None
    type: Literal["allergy", "intolerance"] | None = None
    category: list[Literal["food", "medication", "environment", "biologic"]] | None = None
    criticality: Literal["low", "high", "unable-to-assess"] | None = None
    code: CodeableConcept | None = None
    patient: Reference
    encounter: Reference | None = None
    onset_date_time: FhirDateTime | None = None
    onset_age: Quantity | None = None
    onset_period: Period | None = None
    onset_range: Range | None = None
    onset_string: str | None = None
    recorded_date: FhirDateTime | None = None
    last_occurrence: FhirDateTime | None = None
    note: list[Annotation] | None = None
    reaction: list[AllergyReaction] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"onset": False}


class Immunization(Resource, kw_only=True):
    status: Literal["completed", "entered-in-error", "not-done"]
    status_reason: CodeableConcept | None = None
    vaccine_code: CodeableConcept
    patient: Reference
    encounter: Reference | None = None
    occurrence_date_time: FhirDateTime | None = None
    occurrence_string: str | None = None
    recorded: FhirDateTime | None = None
    primary_source: bool | None = None
    lot_number: str | None = None
    expiration_date: FhirDate | None = None
    dose_quantity: Quantity | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"occurrence": True}


class Procedure(Resource, kw_only=True):
    status: Literal[
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    ]
    category: CodeableConcept | None = None
    code: CodeableConcept | None = None
    subject: Reference
    encounter: Reference | None = None
    performed_date_time: FhirDateTime | None = None
    performed_period: Period | None = None
    performed_string: str | None = None
    performed_age: Quantity | None = None
    performed_range: Range | None = None
    body_site: list[CodeableConcept] | None = None
    note: list[Annotation] | None = None

    CHOICES: ClassVar[dict[str, bool]] = {"performed": False}


class Encounter(Resource, kw_only=True):
    status: Literal[
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    ]
    encounter_class: Coding = msgspec.field(name="class")
    type: list[CodeableConcept] | None = None
    service_type: CodeableConcept | None = None
    priority: CodeableConcept | None = None
    subject: Reference | None = None
    period: Period | None = None
    length: Quantity | None = None
    reason_code: list[CodeableConcept] | None = None


class DocumentContent(Element, kw_only=True):
    attachment: Attachment
    format: Coding | None = None


class DocumentContext(Element, kw_only=True):
    encounter: list[Reference] | None = None
    period: Period | None = None


class DocumentReference(Resource, kw_only=True):
    status: Literal["current", "superseded", "entered-in-error"]
    doc_status: Literal["preliminary", "final", "amended", "entered-in-error"] | None = None
    type: CodeableConcept | None = None
    category: list[CodeableConcept] | None = None
    subject: Reference | None = None
    date: FhirInstant | None = None
    author: list[Reference] | None = None
    description: str | None = None
    content: Annotated[list[DocumentContent], msgspec.Meta(min_length=1)]
    context: DocumentContext | None = None


# The resource types checked element by element; any other allowed type gets only
# the checks `Resource` makes (resourceType, id, meta).
VALIDATED: dict[str, type[Resource]] = {
    cls.__name__: cls
    for cls in (
        Observation,
        DiagnosticReport,
        ImagingStudy,
        MedicationRequest,
        MedicationDispense,
        MedicationStatement,
        Condition,
        AllergyIntolerance,
        Immunization,
        Procedure,
        Encounter,
        DocumentReference,
        Patient,
    )
}
