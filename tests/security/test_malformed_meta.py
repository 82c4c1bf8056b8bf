"""Item: a malformed `meta` on a self-reported record.

Before: `"meta": "x"` or `meta.tag` as an object answered 500 (the self-reported
tag was added by walking `meta` before the resource was validated). Now the
resource is validated first: 422 problem+json naming the field."""

from __future__ import annotations

import pytest

from tests.security.support import assert_problem

OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}}


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ("x", "meta"),
        (17, "meta"),
        ([{"tag": []}], "meta"),
        ({"tag": {"code": "x"}}, "meta.tag"),
        ({"tag": "x"}, "meta.tag"),
        ({"tag": [17]}, "meta.tag"),
        ({"tag": [{"code": {"nested": 1}}]}, "meta.tag"),
        ({"security": {"code": "x"}}, "meta.security"),
        ({"lastUpdated": "yesterday"}, "meta.lastUpdated"),
    ],
)
async def test_malformed_meta__422_naming_the_field(client, patient, meta, field):
    response = await client.post(
        "/v1/records", json={**OBSERVATION, "meta": meta}, headers=patient.headers
    )
    body = assert_problem(response, 422)
    fields = [error["field"] for error in body["errors"]]
    assert any(
        f == field or f.startswith(field + "[") or f.startswith(field + ".") for f in fields
    ), body


async def test_well_formed_meta_tags__kept_beside_the_self_reported_tag(client, patient):
    tag = {"system": "https://example.org/tags", "code": "home"}
    response = await client.post(
        "/v1/records",
        json={**OBSERVATION, "meta": {"tag": [tag]}},
        headers=patient.headers,
    )
    assert response.status_code == 201, response.text
    tags = response.json()["resource"]["meta"]["tag"]
    assert tag in tags and any(t["code"] == "self-reported" for t in tags)
