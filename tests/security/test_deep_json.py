"""Item: deeply nested JSON.

Before: `[[[[…]]]]` 5,000 deep to /v1/auth/login answered 500 (msgspec raises
RecursionError, which no handler caught). Now every JSON body on every route is
measured on its raw bytes before any decoder runs and refused past 64 levels with
400 problem+json `nested-too-deep`."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from domain.json_depth import MAX_JSON_DEPTH, NestedTooDeep, check_json_depth
from tests.hospital_support import new_hospital
from tests.security.support import assert_problem

OPENAPI = Path(__file__).parents[2] / "openapi" / "openapi.json"


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def json_body_operations() -> list[tuple[str, str]]:
    """Every operation whose contract takes a JSON body, read from the contract
    itself, so a new route is covered without editing this test."""
    spec = json.loads(OPENAPI.read_text())
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if any("json" in media for media in content):
                found.append((method.upper(), path))
    return sorted(found)


async def test_array_5000_deep_to_login__400_nested_too_deep(client):
    response = await client.post(
        "/v1/auth/login", content=deep_array(5000), headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "nested-too-deep")


async def test_object_3000_deep_to_register__400_nested_too_deep(client):
    response = await client.post(
        "/v1/auth/register",
        content=deep_object(3000),
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400, "nested-too-deep")


async def test_deep_json_without_a_json_content_type__still_400(client):
    response = await client.post(
        "/v1/auth/login", content=deep_array(5000), headers={"content-type": "text/plain"}
    )
    assert_problem(response, 400, "nested-too-deep")


async def test_unclosed_brackets_100000_deep__400_not_a_decoder_crash(client):
    response = await client.post(
        "/v1/auth/login", content=b"[" * 100_000, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "nested-too-deep")


async def test_deep_json_to_every_json_route__400_nested_too_deep(client, patient):
    operations = json_body_operations()
    assert ("POST", "/v1/auth/login") in operations and ("POST", "/v1/records") in operations
    for method, path in operations:
        url = path.replace("{", "").replace("}", "")
        for name in path.split("{")[1:]:
            url = url.replace(name.split("}")[0], str(uuid.uuid4()))
        response = await client.request(
            method,
            url,
            content=deep_object(200),
            headers={**patient.headers, "content-type": "application/json"},
        )
        assert_problem(response, 400, "nested-too-deep")


async def test_deep_json_in_a_signed_webhook_delivery__400_nested_too_deep(client, settings):
    hospital = await new_hospital(client, settings)
    response = await hospital.send_raw(deep_object(3000))
    assert_problem(response, 400, "nested-too-deep")


async def test_deep_self_reported_record__400_nested_too_deep(client, patient):
    # The same cap as a resource inside a pushed bundle: 64 levels.
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    inner: dict = {"text": "deep"}
    for _ in range(MAX_JSON_DEPTH):
        inner = {"extension": [inner]}
    resource["code"] = inner
    response = await client.post("/v1/records", json=resource, headers=patient.headers)
    assert_problem(response, 400, "nested-too-deep")


async def test_a_normal_record_with_brackets_in_its_text__201(client, patient):
    text = "[" * 500 + "{" * 500 + '\\"' + "]"
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": text},
        "valueString": "}" * 300,
    }
    response = await client.post("/v1/records", json=resource, headers=patient.headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (deep_array(64), False),
        (deep_array(65), True),
        (deep_object(64), False),
        (deep_object(65), True),
        (b'["' + b"[" * 1000 + b'"]', False),
        (b'["\\"' + b"[" * 1000 + b'"]', False),
        (b"[" * 10 + b"1", False),
        (b"]" * 1000 + b"[" * 10, False),
        (b"[" * 65, True),
        (b'{"a": [' + b"[]," * 5000 + b"[]]}", False),
        (b'"' + b'\\"' * 10_000, False),
    ],
)
def test_depth_measure__refuses_exactly_past_64(body, too_deep):
    if too_deep:
        with pytest.raises(NestedTooDeep):
            check_json_depth(body)
    else:
        check_json_depth(body)


def test_depth_measure__a_mebibyte_of_hostile_brackets_in_under_a_second():
    # The anonymous body limit is 1 MiB; the worst case for the measure is many
    # pairs just under the limit, each pass finding work to do.
    body = (deep_array(63) + b",") * (1024 * 1024 // 127)
    body = b"[" + body[:-1] + b"]"
    started = time.perf_counter()
    check_json_depth(body)
    assert time.perf_counter() - started < 1.0
    quotes = b'"' + b'\\"' * (512 * 1024)
    started = time.perf_counter()
    check_json_depth(quotes)
    assert time.perf_counter() - started < 1.0
