"""Which FHIR R4 resource types phr knows and accepts: the Patient compartment,
the resources they refer to, the Bundle types, and the form of a resource id."""

from __future__ import annotations

import re
from typing import Any

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

RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)


def known_type(value: Any) -> str | None:
    """`value` if it names an R4 resource type (safe for any JSON value)."""
    return value if isinstance(value, str) and value in R4_RESOURCE_TYPES else None
