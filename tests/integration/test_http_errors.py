"""Bad input always gets a clear problem+json, never a stack trace or a 500."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    text = response.text.lower()
    for leak in ("traceback", "asyncpg", "select ", "insert ", 'file "'):
        assert leak not in text
    return body


async def test_a_two_mebibyte_body_is_refused_with_413(client):
    huge = b'{"email": "a@example.org", "password": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/auth/register", content=huge, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_a_two_mebibyte_record_is_refused_with_413(client, patient):
    huge = (
        b'{"resourceType": "Observation", "note": [{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}]}'
    )
    response = await client.post(
        "/v1/records", content=huge, headers={**patient.headers, "content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_malformed_json_is_400_not_500(client, patient):
    for url, headers in (
        ("/v1/auth/register", {}),
        ("/v1/auth/login", {}),
        ("/v1/records", patient.headers),
    ):
        response = await client.post(
            url,
            content=b'{"email": "a@example.org", ',
            headers={**headers, "content-type": "application/json"},
        )
        body = assert_problem(response, 400)
        assert "json" in (body.get("detail", "") + body["title"]).lower()


async def test_missing_and_wrongly_typed_fields_are_named(client):
    response = await client.post("/v1/auth/register", json={"email": 42})
    body = assert_problem(response, 400)
    fields = {error["field"] for error in body.get("errors", [])}
    assert fields & {"email", "password"}, body


async def test_unknown_fields_are_refused(client):
    response = await client.post(
        "/v1/auth/login",
        json={"email": "a@example.org", "password": "whatever it is", "admin": True},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_wrong_method_and_unknown_path_are_problems(client):
    assert_problem(await client.put("/v1/records"), 405)
    assert_problem(await client.get("/v1/nothing-here"), 404)


async def test_control_characters_are_refused_not_500(client, patient):
    """Found by schemathesis: NUL bytes reached PostgreSQL and came back as 500s."""
    response = await client.get("/v1/records?type=%00&type=Observation", headers=patient.headers)
    assert_problem(response, 422)
    response = await client.get("/v1/records?q=a%00b", headers=patient.headers)
    assert_problem(response, 422)
    nul = (
        b'{"resourceType":"Observation","status":"final","code":{"text":"a\\u0000b"},'
        b'"valueQuantity":{"value":1}}'
    )
    response = await client.post(
        "/v1/records", content=nul, headers={**patient.headers, "content-type": "application/json"}
    )
    assert_problem(response, 422)
    response = await client.post("/v1/records", json={"resourceType": {}}, headers=patient.headers)
    assert_problem(response, 422)
