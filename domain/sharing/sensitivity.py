"""Which records are sensitive: those whose `meta.security` carries an HL7
sensitivity label (v3-ActCode: HIV, mental health, substance use, sexual and
reproductive health, genetics, ...) or a restricted / very restricted
confidentiality (v3-Confidentiality R, V). A share leaves them out unless the
patient includes them explicitly (`scope.includeSensitive`)."""

from __future__ import annotations

from typing import Any

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

SENSITIVE_ACT_CODES = frozenset(
    {
        "HIV",  # HIV/AIDS information
        "PSY",  # psychiatry
        "PSYTHPN",  # psychotherapy note
        "BH",  # behavioral health
        "MH",  # mental health
        "ETH",  # substance abuse
        "ETHUD",  # alcohol / drug use disorder
        "SUD",  # substance use disorder
        "SDV",  # sexual and domestic violence
        "SEX",  # sexuality and reproductive health
        "STD",  # sexually transmitted disease
        "GDIS",  # genetic disease
        "GENETIC",
        "MST",  # military sexual trauma
        "SCA",  # sickle cell anemia
        "SPI",  # specially protected information
        "TBOO",  # taboo
    }
)
RESTRICTED_CONFIDENTIALITY = frozenset({"R", "V"})


def is_sensitive(resource: dict[str, Any]) -> bool:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return False
    labels = meta.get("security")
    if not isinstance(labels, list):
        return False
    for label in labels:
        if not isinstance(label, dict):
            continue
        code = label.get("code")
        system = label.get("system")
        if system == CONFIDENTIALITY_SYSTEM and code in RESTRICTED_CONFIDENTIALITY:
            return True
        if system in (ACT_CODE_SYSTEM, None) and code in SENSITIVE_ACT_CODES:
            return True
    return False
