from __future__ import annotations

PROBLEM = "application/problem+json"


async def test_healthz_answers_ok(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_reports_ready_when_migrated(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_unknown_route_is_problem_json(client):
    response = await client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 404 and body["type"].endswith("/not-found")


async def test_request_id_is_echoed_when_sane(client):
    response = await client.get("/healthz", headers={"x-request-id": "abcdef0123456789"})
    assert response.headers["x-request-id"] == "abcdef0123456789"
    response = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert response.headers["x-request-id"] != "bad id with spaces"
