"""Helpers for share tests: records made through the domain (as a hospital push
does), shares made through the API, and an independent SHL reader (jwcrypto,
not the JOSE library phr encrypts with)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from jwcrypto import jwe as jw_jwe
from jwcrypto import jwk as jw_jwk

SECURITY_HIV = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_shlink(text: str) -> dict[str, Any]:
    """The payload of `shlink:/...`, or of a viewer URL ending in `#shlink:/...`."""
    tail = text.split("#", 1)[1] if "#" in text else text
    assert tail.startswith("shlink:/"), text
    return json.loads(b64url_decode(tail[len("shlink:/") :]))


def decrypt(jwe_compact: str, key_b64url: str) -> tuple[dict[str, Any], bytes]:
    """(protected header, plaintext), with jwcrypto."""
    key = jw_jwk.JWK(kty="oct", k=key_b64url)
    token = jw_jwe.JWE()
    token.deserialize(jwe_compact, key=key)
    return token.jose_header, token.payload


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def condition(source_id: str, text: str, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Condition",
        "id": source_id,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"text": text},
        "subject": {"reference": "Patient/p1"},
        "recordedDate": "2025-01-10",
    }
    resource.update(extra)
    return resource


def bundle_resources(plaintext: bytes) -> list[dict[str, Any]]:
    bundle = json.loads(plaintext)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    return [entry["resource"] for entry in bundle["entry"]]
