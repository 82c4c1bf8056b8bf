"""Contract item: a request body means what the OpenAPI document says.

Before: Litestar converted bodies leniently, so `"refillLeadDays": "3"`, a kind
switched off with `0` or on with `"true"`, and `"longTerm": 1` were accepted
although the contract declares integer and boolean (schemathesis with every
check: "schema-violating request accepted"). Now each is 400 problem+json naming
the field; JSON Schema's own equivalence (3.0 is the integer 3) still holds."""

from __future__ import annotations

import pytest

from tests.security.support import assert_problem

PREFERENCES = "/v1/me/notification-preferences"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"refillLeadDays": "3"}, "refillLeadDays"),
        ({"kinds": {"new-results": 0}}, "kinds"),
        ({"kinds": {"new-results": "true"}}, "kinds"),
        ({"abnormalDelayHours": True}, "abnormalDelayHours"),
        ({"quietHours": {"start": "22:00", "end": "07:00", "x": 1}}, "quietHours"),
    ],
)
async def test_a_value_of_another_type__400_naming_the_field(client, patient, body, field):
    response = await client.put(PREFERENCES, json=body, headers=patient.headers)
    problem = assert_problem(response, 400)
    assert problem["errors"][0]["field"].startswith(field), problem
    assert (await client.get(PREFERENCES, headers=patient.headers)).json()["refillLeadDays"] == 3


async def test_a_boolean_given_as_a_number_on_another_route__400(client, patient):
    response = await client.post(
        "/v1/shares",
        json={"expiresAt": "2099-01-01T00:00:00Z", "longTerm": 1},
        headers=patient.headers,
    )
    assert_problem(response, 400)


async def test_an_integral_float_is_an_integer__accepted(client, patient):
    response = await client.put(PREFERENCES, json={"refillLeadDays": 5.0}, headers=patient.headers)
    assert response.status_code == 200, response.text
    assert response.json()["refillLeadDays"] == 5
