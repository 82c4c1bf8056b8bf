"""Real FHIR R4 test data, found by name: the HL7 R4 examples under tests/data/fhir/hl7,
one Synthea patient Bundle, and the HL7 IPS example document Bundle.
tests/data/README.md says where each came from."""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data" / "fhir"
HL7_DIR = DATA_DIR / "hl7"
SYNTHEA_BUNDLE = DATA_DIR / "synthea" / "synthea-patient-bundle.json"
IPS_BUNDLE = DATA_DIR / "ips" / "IPS_IG-bundle-01.json"

# The twelve types phr checks element by element (domain/fhir/resources.py).
VALIDATED_TYPES = (
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Condition",
    "AllergyIntolerance",
    "Immunization",
    "Procedure",
    "Encounter",
    "DocumentReference",
)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def hl7_example(name: str) -> dict:
    """One HL7 example by its file stem, e.g. "Observation-example" or "Bundle-father"."""
    return load(HL7_DIR / f"{name}.json")


def hl7_example_names(resource_type: str) -> list[str]:
    """Stems of the committed HL7 examples of one resource type, sorted."""
    return sorted(p.stem for p in HL7_DIR.glob(f"{resource_type}-*.json"))


def synthea_bundle() -> dict:
    """A Synthea-generated transaction Bundle of one patient (556 entries)."""
    return load(SYNTHEA_BUNDLE)


def ips_bundle() -> dict:
    """The HL7 IPS example document Bundle (20 entries)."""
    return load(IPS_BUNDLE)
