"""What every hostile-input test checks of an error: RFC 9457 problem+json, with
nothing internal in it."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["title"]
    if kind is not None:
        assert body["type"].endswith("/" + kind), body
    text = response.text.lower()
    for leak in ("traceback", "recursion", "asyncpg", "select ", "insert ", 'file "'):
        assert leak not in text, body
    return body
