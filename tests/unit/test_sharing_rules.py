"""Sharing rules without I/O: the link payload, scope selection, sensitivity,
the passcode's bounds, and the JWE adapter against an independent library and
a link made by someone else (the HL7 IPS vector)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from domain.errors import InvalidInput
from domain.sharing.link import decode_shlink, encode_shlink, flags, manifest_url
from domain.sharing.passcode import check_passcode
from domain.sharing.scope import Candidate, ShareScope, select
from domain.sharing.sensitivity import is_sensitive
from infra.shl_jose import decrypt_compact, encrypt_compact
from tests.share_support import decrypt

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1] / "data" / "shl"
HOSPITAL = UUID(int=1)


def record(resource_type: str, *, days_ago: int | None = 1, **extra) -> Candidate:
    resource = {"resourceType": resource_type, **extra.pop("resource", {})}
    return Candidate(
        id=uuid4(),
        resource_type=resource_type,
        category=extra.pop("category", None),
        hospital_id=extra.pop("hospital_id", HOSPITAL),
        effective_at=None if days_ago is None else NOW - timedelta(days=days_ago),
        resource=resource,
    )


def test_flags_are_alphabetical_and_the_payload_follows_the_spec():
    assert flags(long_term=True, passcode=True) == "LP"
    assert flags(long_term=False, passcode=True) == "P"
    assert flags(long_term=False, passcode=False) == ""
    key = bytes(range(32))
    link = encode_shlink(
        url="https://phr.example/shl/" + "A" * 43, key=key, expires_at=NOW, flag="P", label="x"
    )
    raw = json.loads(base64.urlsafe_b64decode(link.removeprefix("shlink:/") + "=="))
    assert list(raw) == ["url", "key", "exp", "flag", "label", "v"]
    assert raw["exp"] == int(NOW.timestamp()) and raw["v"] == 1
    assert decode_shlink("https://viewer.example/#" + link).key == raw["key"]
    with pytest.raises(ValueError):
        manifest_url("https://" + "x" * 100 + ".example", "A" * 43)


def test_an_exp_in_milliseconds_as_a_string_is_tolerated():
    body = {"url": "https://x.example/m", "key": "k" * 43, "exp": "1700000000000", "flag": "LU"}
    encoded = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    assert decode_shlink("shlink:/" + encoded).exp == 1_700_000_000


def test_the_hl7_vector_payload_decodes():
    details = json.loads((DATA / "IPS_IG-bundle-01-shl-details.json").read_text())
    payload = decode_shlink(details["shlinkBare"])
    assert payload.flag == "LU" and payload.key == details["shlinkJsonPayload"]["key"]


def test_the_summary_takes_recent_results_and_leaves_old_ones():
    recent = record("Observation", days_ago=30)
    old = record("Observation", days_ago=400)
    undated = record("Observation", days_ago=None)
    problem = record("Condition", days_ago=3000)
    encounter = record("Encounter")
    chosen = select(ShareScope(), [recent, old, undated, problem, encounter], NOW)
    assert chosen == [recent, problem]


@pytest.mark.parametrize(
    ("label", "sensitive"),
    [
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}, True),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}, True),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}, True),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SDV"}, True),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "GDIS"}, True),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}, True),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}, True),
        (
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"},
            False,
        ),
        ({"system": "http://example.org/local", "code": "HIV"}, False),
    ],
)
def test_sensitivity_labels(label, sensitive):
    resource = {"resourceType": "Condition", "meta": {"security": [label]}}
    assert is_sensitive(resource) is sensitive
    candidate = record("Condition", resource={"meta": {"security": [label]}})
    assert (select(ShareScope(), [candidate], NOW) == []) is sensitive
    assert select(ShareScope(include_sensitive=True), [candidate], NOW) == [candidate]


def test_a_scope_combines_its_filters():
    lab = record("Observation", category="laboratory", days_ago=10)
    vital = record("Observation", category="vital-signs", days_ago=10)
    elsewhere = record("Observation", category="laboratory", hospital_id=UUID(int=2))
    scope = ShareScope(
        resource_types=("Observation",),
        categories=("laboratory",),
        hospital_ids=(HOSPITAL,),
        since=NOW - timedelta(days=20),
        until=NOW,
    )
    assert select(scope, [lab, vital, elsewhere], NOW) == [lab]
    assert select(ShareScope(record_ids=(vital.id,)), [lab, vital], NOW) == [vital]
    assert select(ShareScope(until=NOW - timedelta(days=15)), [lab], NOW) == []


@pytest.mark.parametrize("passcode", ["123", "x" * 65, "12\n34"])
def test_bad_passcodes_are_refused(passcode):
    with pytest.raises(InvalidInput):
        check_passcode(passcode)


def test_our_jwe_opens_with_jwcrypto_even_past_joserfcs_default_cap():
    key = bytes(range(32))
    plaintext = json.dumps({"resourceType": "Bundle", "pad": "x" * 200_000}).encode()
    compact = encrypt_compact(plaintext, key)
    header, opened = decrypt(compact, base64.urlsafe_b64encode(key).decode().rstrip("="))
    assert header == {"alg": "dir", "enc": "A256GCM", "cty": "application/fhir+json"}
    assert opened == plaintext
    assert encrypt_compact(plaintext, key).split(".")[2] != compact.split(".")[2]


def test_the_hl7_vector_decrypts_without_cty():
    details = json.loads((DATA / "IPS_IG-bundle-01-shl-details.json").read_text())
    key = base64.urlsafe_b64decode(details["shlinkJsonPayload"]["key"] + "=")
    plaintext = decrypt_compact((DATA / "IPS_IG-bundle-01-enc.txt").read_text().strip(), key)
    expected = json.loads((DATA.parent / "fhir" / "ips" / "IPS_IG-bundle-01.json").read_text())
    assert json.loads(plaintext) == expected
    assert len(expected["entry"]) == 20
