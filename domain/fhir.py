"""FHIR R4 (4.0.1) records as phr accepts them: which resource types belong in a
patient's record, how one resource or a whole Bundle is validated, how references
between the entries of one Bundle are resolved, and the fields phr indexes.

Everything here is pure: dicts in, Structs out, `InvalidFhir` naming each bad entry
and field when the input is not acceptable. No other exception leaves
`validate_resource` or `parse_bundle`, whatever the input."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import msgspec

from domain import fhir_resources as r
from domain.errors import FieldProblem, InvalidInput
from domain.fhir_resources import parse_fhir_datetime

# From http://hl7.org/fhir/R4/compartmentdefinition-patient.html (CompartmentDefinition
# "patient" of the 4.0.1 package): every type with a parameter linking it to the patient.
PATIENT_COMPARTMENT_TYPES: frozenset[str] = frozenset(
    {
        "Account",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "ChargeItem",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "Communication",
        "CommunicationRequest",
        "Composition",
        "Condition",
        "Consent",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "Encounter",
        "EnrollmentRequest",
        "EpisodeOfCare",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "Group",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "Invoice",
        "List",
        "MeasureReport",
        "Media",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "MolecularSequence",
        "NutritionOrder",
        "Observation",
        "Patient",
        "Person",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchSubject",
        "RiskAssessment",
        "Schedule",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "SupplyRequest",
        "VisionPrescription",
    }
)

# Resources that records point to (who, where, what drug, which device, which sample,
# the bytes of a document). Kept so references resolve, not shown as records of their
# own; never a reason to reject a Bundle. Specimen is also in the Patient compartment.
SUPPORTING_TYPES: frozenset[str] = frozenset(
    {
        "Specimen",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
        "Medication",
        "Endpoint",
        "Device",
        "Substance",
        "Binary",
    }
)

# The other R4 resource types: known, but not patient data, so refused by name.
_NOT_PATIENT_DATA_TYPES: frozenset[str] = frozenset(
    {
        "ActivityDefinition",
        "BiologicallyDerivedProduct",
        "Bundle",
        "CapabilityStatement",
        "CatalogEntry",
        "ChargeItemDefinition",
        "CodeSystem",
        "CompartmentDefinition",
        "ConceptMap",
        "Contract",
        "DeviceDefinition",
        "DeviceMetric",
        "EffectEvidenceSynthesis",
        "EnrollmentResponse",
        "EventDefinition",
        "Evidence",
        "EvidenceVariable",
        "ExampleScenario",
        "GraphDefinition",
        "GuidanceResponse",
        "ImplementationGuide",
        "InsurancePlan",
        "Library",
        "Linkage",
        "Measure",
        "MedicationKnowledge",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "MessageDefinition",
        "MessageHeader",
        "NamingSystem",
        "ObservationDefinition",
        "OperationDefinition",
        "OperationOutcome",
        "OrganizationAffiliation",
        "Parameters",
        "PaymentNotice",
        "PaymentReconciliation",
        "PlanDefinition",
        "Questionnaire",
        "ResearchDefinition",
        "ResearchElementDefinition",
        "ResearchStudy",
        "RiskEvidenceSynthesis",
        "SearchParameter",
        "Slot",
        "SpecimenDefinition",
        "StructureDefinition",
        "StructureMap",
        "Subscription",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
        "Task",
        "TerminologyCapabilities",
        "TestReport",
        "TestScript",
        "ValueSet",
        "VerificationResult",
    }
)

R4_RESOURCE_TYPES: frozenset[str] = (
    PATIENT_COMPARTMENT_TYPES | SUPPORTING_TYPES | _NOT_PATIENT_DATA_TYPES
)
ALLOWED_TYPES: frozenset[str] = PATIENT_COMPARTMENT_TYPES | SUPPORTING_TYPES

ACCEPTED_BUNDLE_TYPES: frozenset[str] = frozenset(
    {"transaction", "batch", "collection", "searchset", "document", "message"}
)

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
_URN_UUID = re.compile(r"urn:uuid:([0-9a-fA-F-]{1,64})", re.ASCII)
# Nesting deeper than this is no FHIR resource; refusing it keeps the walks bounded.
_MAX_DEPTH = 64


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


class EntryProblem(msgspec.Struct, frozen=True):
    """One bad field in one entry. `field` is relative to the resource, or to the
    entry when `scope` is "entry", or to the Bundle when "bundle"."""

    entry_index: int | None
    resource_type: str | None
    field: str
    message: str
    scope: str = "resource"

    @property
    def path(self) -> str:
        """Where the problem is in the request body, e.g. bundle.entry[3].resource.status."""
        if self.scope == "bundle":
            return "bundle" + (f".{self.field}" if self.field else "")
        if self.entry_index is None:
            return self.field or "resource"
        entry = f"bundle.entry[{self.entry_index}]"
        if self.scope == "entry":
            return entry + (f".{self.field}" if self.field else "")
        return entry + ".resource" + (f".{self.field}" if self.field else "")

    @property
    def sentence(self) -> str:
        where = self.resource_type or "resource"
        if self.scope == "bundle":
            return f"bundle: {self.message}"
        if self.entry_index is None:
            return f"{where}: {self.message}"
        return f"entry {self.entry_index} ({where}): {self.message}"


class InvalidFhir(InvalidInput):
    """A resource or Bundle phr will not store; `problems` names every bad entry."""

    kind = "invalid-fhir"
    title = "The FHIR content is not valid"

    def __init__(self, problems: list[EntryProblem]):
        self.problems = list(problems)
        first = self.problems[0].sentence if self.problems else self.title
        more = len(self.problems) - 1
        detail = first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        super().__init__(
            detail,
            errors=[FieldProblem(field=p.path, message=p.message) for p in self.problems],
        )


# --- single resources ---------------------------------------------------------------


def validate_resource(resource: dict, *, entry_index: int | None = None) -> IndexedFields:
    """Check one resource and return its indexed fields; raises InvalidFhir."""
    typed = _check(resource, entry_index)
    if b"\\u0000" in _encoder.encode(resource):
        # PostgreSQL text and JSONB cannot hold a NUL character, and no FHIR
        # string may contain one (FHIR strings exclude control characters).
        raise _problem(
            entry_index,
            typed.resource_type,
            "",
            "a string in the resource contains a NUL character",
        )
    return _index(typed, resource)


def _problem(
    entry_index: int | None, resource_type: str | None, field: str, message: str
) -> InvalidFhir:
    return InvalidFhir([EntryProblem(entry_index, resource_type, field, message)])


def _check(resource: Any, entry_index: int | None) -> r.Resource:
    if not isinstance(resource, dict):
        raise _problem(entry_index, None, "", "the resource must be a JSON object")
    resource_type = resource.get("resourceType")
    if resource_type is None:
        raise _problem(entry_index, None, "resourceType", "field 'resourceType' is required")
    if not isinstance(resource_type, str):
        raise _problem(entry_index, None, "resourceType", "field 'resourceType' must be a string")
    shown_type = resource_type if resource_type in R4_RESOURCE_TYPES else None
    if resource_type not in R4_RESOURCE_TYPES:
        raise _problem(
            entry_index,
            None,
            "resourceType",
            f"field 'resourceType' is not a FHIR R4 resource type: {_show(resource_type)}",
        )
    if resource_type not in ALLOWED_TYPES:
        raise _problem(
            entry_index,
            shown_type,
            "resourceType",
            f"field 'resourceType' {resource_type!r} is not patient data "
            "(only types in the R4 Patient compartment and the resources they refer to)",
        )
    if "id" in resource:
        rid = resource["id"]
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            raise _problem(
                entry_index,
                resource_type,
                "id",
                "field 'id' must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.', "
                f"got {_show(rid)}",
            )
    shape = r.VALIDATED.get(resource_type, r.Resource)
    try:
        typed = msgspec.convert(resource, shape, dec_hook=r.decode_fhir_scalar)
    except msgspec.ValidationError as exc:
        field, message = _explain(str(exc), shape)
        raise _problem(entry_index, resource_type, field, message) from None
    problems = [
        EntryProblem(entry_index, resource_type, field, message)
        for field, message in _choice_problems(resource, shape.CHOICES)
    ]
    if problems:
        raise InvalidFhir(problems)
    return typed


def _choice_problems(resource: dict, choices: dict[str, bool]) -> list[tuple[str, str]]:
    """At most one variant of each choice element, and one where R4 requires it."""
    found: list[tuple[str, str]] = []
    for base, required in choices.items():
        present = sorted(
            key
            for key in resource
            if isinstance(key, str)
            and key.startswith(base)
            and len(key) > len(base)
            and key[len(base)].isupper()
        )
        if len(present) > 1:
            found.append((present[1], f"only one of {', '.join(present)} may be given ({base}[x])"))
        elif required and not present:
            found.append((f"{base}[x]", f"field '{base}[x]' is required"))
    return found


_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_EXPECTED = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")
_ENUM = re.compile(r"Invalid enum value (?P<value>.+)")
_ARRAY_LEN = re.compile(r"Expected `array` of length >= (?P<n>\d+)")
_TYPE_WORDS = {
    "str": "a string",
    "float": "a number",
    "int": "an integer",
    "bool": "a boolean",
    "array": "an array",
    "object": "an object",
}


def _explain(error: str, shape: type) -> tuple[str, str]:
    """Turn a msgspec ValidationError message into (field path, sentence)."""
    match = _MSGSPEC_PATH.match(error)
    assert match is not None  # the pattern matches any string
    message, path = match["msg"], (match["path"] or "").lstrip(".")
    if missing := _MISSING.fullmatch(message):
        field = f"{path}.{missing['name']}" if path else missing["name"]
        return field, f"field '{field}' is required"
    field = path or "resource"
    if expected := _EXPECTED.fullmatch(message):
        wants = [
            _TYPE_WORDS.get(w.strip(), w.strip())
            for w in expected["want"].split("|")
            if w.strip() != "null"
        ]
        got = _TYPE_WORDS.get(expected["got"], expected["got"])
        return field, f"field '{field}' must be {' or '.join(wants)}, got {got}"
    if enum := _ENUM.fullmatch(message):
        allowed = _allowed_codes(shape, path)
        tail = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return field, f"field '{field}' has an invalid code {enum['value']}{tail}"
    if length := _ARRAY_LEN.fullmatch(message):
        return field, f"field '{field}' needs at least {length['n']} item(s)"
    return field, f"field '{field}' {message}"


def _allowed_codes(shape: type, path: str) -> list[str]:
    """The Literal values declared at `path` of `shape`, for the error message."""
    info: Any = msgspec.inspect.type_info(shape)
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        info = _unwrap(info)
        if part.startswith("["):
            if isinstance(info, msgspec.inspect.ListType):
                info = info.item_type
                continue
            return []
        if not isinstance(info, msgspec.inspect.StructType):
            return []
        info = next((f.type for f in info.fields if f.encode_name == part), None)
        if info is None:
            return []
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.ListType):
        info = _unwrap(info.item_type)
    if isinstance(info, msgspec.inspect.LiteralType):
        return [str(v) for v in info.values]
    return []


def _unwrap(info: Any) -> Any:
    if isinstance(info, msgspec.inspect.UnionType):
        rest = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(rest) == 1:
            return rest[0]
    if isinstance(info, msgspec.inspect.Metadata):
        return _unwrap(info.type)
    return info


def _known_type(value: Any) -> str | None:
    """`value` if it names an R4 resource type (safe for any JSON value)."""
    return value if isinstance(value, str) and value in R4_RESOURCE_TYPES else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- indexing -------------------------------------------------------------------------


def _first_coding(concept: r.CodeableConcept | None) -> r.Coding | None:
    if concept is None or not concept.coding:
        return None
    return next((c for c in concept.coding if c.code), concept.coding[0])


def _concept_text(concept: r.CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display:
            return coding.display
    return None


def _concept_code(concept: r.CodeableConcept | None) -> str | None:
    coding = _first_coding(concept)
    return coding.code if coding else None


def _first(items: list | None) -> Any:
    return items[0] if items else None


def _when(*candidates: str | None) -> datetime | None:
    for text in candidates:
        if text:
            return parse_fhir_datetime(text)
    return None


def _period_start(period: r.Period | None) -> str | None:
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
    concept: r.CodeableConcept | None = None
    coding: r.Coding | None = None
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
    concept: r.CodeableConcept | None, reference: r.Reference | None, raw: dict
) -> r.CodeableConcept | None:
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
                return msgspec.convert(item["code"], r.CodeableConcept)
            except msgspec.ValidationError:
                return None
    return None


def _medication_display(
    concept: r.CodeableConcept | None, reference: r.Reference | None
) -> str | None:
    return _concept_text(concept) or (reference.display if reference else None)


def _person_name(names: list[r.HumanName] | None) -> str | None:
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
                concept = msgspec.convert(candidate, r.CodeableConcept)
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
            category = _concept_code(msgspec.convert(cat, r.CodeableConcept))
        except msgspec.ValidationError:
            category = None
    display = _concept_text(concept)
    name = raw.get("name")
    if display is None and isinstance(name, str):
        display = name  # Organization, Location, Device...
    elif display is None and isinstance(name, list):
        try:
            display = _person_name(msgspec.convert(name, list[r.HumanName]))
        except msgspec.ValidationError:
            display = None
    return _Summary(
        category=category,
        concept=concept,
        display=display,
        effective_at=when,
        status=status if isinstance(status, str) else None,
    )


def _index(res: r.Resource, raw: dict) -> IndexedFields:
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


# --- bundles -------------------------------------------------------------------------


class ParsedEntry(msgspec.Struct, frozen=True):
    index: int
    full_url: str | None
    resource: dict
    fields: IndexedFields
    is_supporting: bool


def parse_bundle(bundle: dict) -> list[ParsedEntry]:
    """Validate every entry of a Bundle and resolve its internal references.

    Returns the entries to store, in Bundle order. Search outcomes (OperationOutcome)
    and a message Bundle's MessageHeader are not records and are left out. Raises one
    InvalidFhir naming every bad entry (the first problem of each)."""
    entries = _bundle_entries(bundle)
    problems: list[EntryProblem] = []
    kept: list[tuple[int, str | None, dict]] = []
    for index, entry in enumerate(entries):
        problem, item = _entry_resource(index, entry, bundle.get("type"))
        if problem:
            problems.append(problem)
        elif item is not None:
            kept.append((index, item[0], item[1]))

    # First pass: give id-less urn:uuid entries their id, and map fullUrl -> Type/id.
    targets: dict[str, str] = {}
    resources: list[tuple[int, str | None, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, full_url, resource in kept:
        resource_type = resource.get("resourceType")
        urn = _URN_UUID.fullmatch(full_url) if isinstance(full_url, str) else None
        if urn and "id" not in resource and isinstance(resource_type, str):
            resource = {**resource, "id": _id_from_uuid(urn[1])}
        rid = resource.get("id")
        if isinstance(full_url, str) and full_url.startswith("urn:"):
            if isinstance(resource_type, str) and isinstance(rid, str):
                targets.setdefault(full_url, f"{resource_type}/{rid}")
        if isinstance(resource_type, str) and isinstance(rid, str):
            first = seen.setdefault((resource_type, rid), index)
            if first != index:
                problems.append(
                    EntryProblem(
                        index,
                        _known_type(resource_type),
                        "id",
                        f"field 'id' repeats {resource_type}/{rid} of entry {first}",
                    )
                )
                continue
        resources.append((index, full_url, resource))

    parsed: list[ParsedEntry] = []
    for index, full_url, resource in resources:
        try:
            rewritten = resource if _plain(resource) else _rewrite_references(resource, targets, 0)
        except _TooDeep:
            problems.append(
                EntryProblem(index, None, "", f"the resource nests deeper than {_MAX_DEPTH} levels")
            )
            continue
        try:
            fields = validate_resource(rewritten, entry_index=index)
        except InvalidFhir as exc:
            problems.extend(exc.problems[:1])
            continue
        parsed.append(
            ParsedEntry(
                index=index,
                full_url=full_url,
                resource=rewritten,
                fields=fields,
                is_supporting=fields.resource_type in SUPPORTING_TYPES
                or fields.resource_type == "Patient",
            )
        )
    if problems:
        problems.sort(key=lambda p: -1 if p.entry_index is None else p.entry_index)
        raise InvalidFhir(problems)
    return parsed


def _bundle_entries(bundle: Any) -> list:
    def fail(field: str, message: str) -> InvalidFhir:
        return InvalidFhir([EntryProblem(None, "Bundle", field, message, scope="bundle")])

    if not isinstance(bundle, dict):
        raise fail("", "the bundle must be a JSON object")
    if bundle.get("resourceType") != "Bundle":
        raise fail(
            "resourceType",
            f"field 'resourceType' must be 'Bundle', got {_show(bundle.get('resourceType'))}",
        )
    bundle_type = bundle.get("type")
    if bundle_type is None:
        raise fail("type", "field 'type' is required")
    if not isinstance(bundle_type, str) or bundle_type not in ACCEPTED_BUNDLE_TYPES:
        raise fail(
            "type",
            f"field 'type' {_show(bundle_type)} is not accepted "
            f"(allowed: {', '.join(sorted(ACCEPTED_BUNDLE_TYPES))})",
        )
    entries = bundle.get("entry")
    if entries is None:
        raise fail("entry", "field 'entry' is required: the bundle has no entries")
    if not isinstance(entries, list):
        raise fail("entry", "field 'entry' must be an array")
    if not entries:
        raise fail("entry", "field 'entry' is empty: the bundle has no entries")
    return entries


def _entry_resource(
    index: int, entry: Any, bundle_type: Any
) -> tuple[EntryProblem | None, tuple[str | None, dict] | None]:
    """(problem, None), (None, (fullUrl, resource)) or (None, None) to skip."""

    def bad(field: str, message: str, resource_type: str | None = None) -> EntryProblem:
        return EntryProblem(index, resource_type, field, message, scope="entry")

    if not isinstance(entry, dict):
        return bad("", "the entry must be a JSON object"), None
    resource = entry.get("resource")
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    shown = _known_type(resource_type)
    request = entry.get("request")
    if request is not None:
        method = request.get("method") if isinstance(request, dict) else None
        if method == "DELETE":
            return bad(
                "request.method",
                "field 'request.method' DELETE is not accepted: records are never deleted "
                "by a push (send the resource with status 'entered-in-error' instead)",
                shown,
            ), None
        if method not in ("POST", "PUT"):
            return bad(
                "request.method",
                f"field 'request.method' must be POST or PUT, got {_show(method)}",
                shown,
            ), None
    search = entry.get("search")
    if isinstance(search, dict) and search.get("mode") == "outcome":
        return None, None
    if resource is None:
        return bad("resource", "field 'resource' is required: the entry carries no resource"), None
    if resource_type == "OperationOutcome" or (
        bundle_type == "message" and resource_type == "MessageHeader"
    ):
        return None, None
    full_url = entry.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        return bad("fullUrl", "field 'fullUrl' must be a string", shown), None
    if not isinstance(resource, dict):
        return bad("resource", "field 'resource' must be a JSON object"), None
    return None, (full_url, resource)


def _id_from_uuid(uuid_text: str) -> str:
    """The id of an entry known only by its urn:uuid: the uuid itself (a valid FHIR id),
    so a redelivery of the same Bundle names the same resource."""
    text = uuid_text.lower()
    if _ID.fullmatch(text):
        return text
    return hashlib.sha256(text.encode()).hexdigest()[:64]


class _TooDeep(Exception):
    pass


_encoder = msgspec.json.Encoder()


def _plain(resource: dict) -> bool:
    """True when walking `resource` can change nothing and find nothing: no
    reference can point at an entry (every target is an urn: fullUrl, and its JSON
    has no '"urn:'), and it has fewer opening brackets than the nesting limit, so
    it cannot nest deeper. Encoding runs in C, far cheaper than the walk."""
    try:
        encoded = _encoder.encode(resource)
    except RecursionError:
        return False
    return b'"urn:' not in encoded and encoded.count(b"{") + encoded.count(b"[") <= _MAX_DEPTH


def _rewrite_references(node: Any, targets: dict[str, str], depth: int) -> Any:
    """A copy of `node` with each `reference` to another entry's urn: fullUrl replaced
    by that entry's "Type/id"."""
    if depth > _MAX_DEPTH:
        raise _TooDeep
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in targets:
                out[key] = targets[value]
            else:
                out[key] = _rewrite_references(value, targets, depth + 1)
        return out
    if isinstance(node, list):
        return [_rewrite_references(item, targets, depth + 1) for item in node]
    return node
