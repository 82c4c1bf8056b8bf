"""Item: the webhook read 20 MiB before it knew who was calling.

Before: any client could post 20 MiB to any hospital id; the body was buffered and
copied before the hospital was looked up or the signature checked, and unknown
hospitals got 401 after the whole body was read. Now, before a byte of the body is
read: a per-client-address limit, the hospital (unknown: 404) and the signature
headers; the signature is computed as the body streams in, stopped at the limit.

These tests speak ASGI directly, to count how much of the body the service read."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from api.routes.webhooks import MAX_WEBHOOK_BODY
from tests.app_in_loop import running
from tests.hospital_support import new_hospital

CHUNK = 1024 * 1024


class Sent(msgspec.Struct):
    status: int
    body: bytes
    chunks_read: int

    def problem(self) -> dict[str, Any]:
        return json.loads(self.body)


async def post(
    app, path: str, headers: dict[str, str], chunks: list[bytes], *, client="192.0.2.10"
) -> Sent:
    """POSTs `chunks` as a streamed body (no Content-Length) and counts the reads."""
    read = 0
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict:
        nonlocal read
        if read < len(messages):
            read += 1
            return messages[read - 1]
        return {"type": "http.disconnect"}

    out: dict[str, Any] = {"body": b""}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (client, 40000),
        "server": ("testserver.local", 80),
    }
    await app(scope, receive, send)
    return Sent(out["status"], out["body"], read)


@pytest.fixture
async def app(settings):
    from api.app import create_app

    tight = msgspec.structs.replace(settings, webhook_address_requests=5)
    async with running(create_app(tight)) as started:
        yield started


def twenty_mib() -> list[bytes]:
    return [b" " * CHUNK for _ in range(20)]


async def test_20_mib_to_an_unknown_hospital__404_with_no_body_byte_read(app):
    sent = await post(
        app,
        f"/v1/hospitals/{uuid.uuid4()}/webhook",
        {
            "content-type": "application/json",
            "webhook-id": "msg_1",
            "webhook-timestamp": "1",
            "webhook-signature": "v1,AAAA",
        },
        twenty_mib(),
    )
    assert sent.status == 404 and sent.problem()["type"].endswith("/hospital-not-found")
    assert sent.chunks_read == 0


async def test_20_mib_without_signature_headers_to_a_real_hospital__401_with_no_body_read(
    app, settings
):
    hospital = await new_hospital(None, settings)
    sent = await post(app, hospital.url, {}, twenty_mib())
    assert sent.status == 401 and sent.chunks_read == 0


async def test_stale_timestamp__401_with_no_body_read(app, settings):
    hospital = await new_hospital(None, settings)
    headers = hospital.sign(b"{}")
    headers["webhook-timestamp"] = "1000"
    sent = await post(app, hospital.url, headers, twenty_mib())
    assert sent.status == 401 and sent.chunks_read == 0


async def test_signed_body_streamed_past_20_mib__413_and_reading_stops_at_the_limit(app, settings):
    hospital = await new_hospital(None, settings)
    chunks = [b" " * CHUNK for _ in range(MAX_WEBHOOK_BODY // CHUNK + 10)]
    sent = await post(app, hospital.url, hospital.sign(b"{}"), chunks)
    assert sent.status == 413 and sent.problem()["status"] == 413
    assert sent.chunks_read <= MAX_WEBHOOK_BODY // CHUNK + 1


async def test_signed_delivery_streamed_in_small_chunks__verified_and_accepted(app, settings):
    hospital = await new_hospital(None, settings)
    body = json.dumps(
        {"type": "patient.linked", "data": {"code": "NOPE-NOPE", "patientRef": "mrn"}}
    ).encode()
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    sent = await post(app, hospital.url, hospital.sign(body), chunks)
    # Verified (a bad signature would be 401): the code itself is unknown.
    assert sent.status == 422 and sent.problem()["type"].endswith("/link-code-invalid")
    tampered = [*chunks[:-1], chunks[-1] + b" "]
    assert (await post(app, hospital.url, hospital.sign(body), tampered)).status == 401


async def test_flood_from_one_address_before_authentication__429_others_unaffected(app, settings):
    hospital = await new_hospital(None, settings)
    target = f"/v1/hospitals/{uuid.uuid4()}/webhook"
    statuses = [
        (await post(app, target, {}, [b"{}"], client="198.51.100.200")).status for _ in range(8)
    ]
    assert statuses == [404] * 5 + [429] * 3
    limited = await post(app, target, {}, [b"{}"], client="198.51.100.200")
    assert limited.chunks_read == 0 and limited.problem()["type"].endswith("/rate-limited")
    body = json.dumps(
        {"type": "patient.linked", "data": {"code": "NOPE-NOPE", "patientRef": "mrn"}}
    ).encode()
    other = await post(app, hospital.url, hospital.sign(body), [body], client="192.0.2.99")
    assert other.status == 422
