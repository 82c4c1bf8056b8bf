"""The S3 endpoint goes down: what needs a file answers 503 problem+json with
Retry-After, in bounded time; the timeline and the records keep working; once
S3 is back, the same upload completes."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import httpx
from litestar.testing import AsyncTestClient
from moto.server import ThreadedMotoServer

from tests.conftest import register_patient, settings_for
from tests.s3_server import S3Server

PROBLEM = "application/problem+json"
PUBLIC = "http://testserver.local"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20 + b"\n%%EOF\n"


def start_s3(port: int = 0) -> tuple[ThreadedMotoServer, S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, S3Server(endpoint_url=f"http://{host}:{bound}", bucket="phr-fault")


async def upload(client, http: httpx.AsyncClient, patient) -> dict:
    started = await client.post(
        "/v1/uploads",
        json={"filename": "letter.pdf", "contentType": "application/pdf", "size": len(PDF)},
        headers=patient.headers,
    )
    assert started.status_code == 201, started.text
    body = started.json()
    put = await http.request(
        body["method"], body["uploadUrl"], headers=body["headers"], content=PDF
    )
    assert put.status_code in (200, 204), put.text
    return body


async def test_s3_down_answers_503_for_files_and_records_keep_working(
    database_dsn: str, data_dir: Path, caplog
):
    from botocore.session import get_session

    from api.app import create_app

    server, s3 = start_s3()
    s3 = S3Server(endpoint_url=s3.endpoint_url, bucket=f"phr-fault-{uuid.uuid4().hex[:8]}")
    boto = get_session().create_client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
    )
    boto.create_bucket(Bucket=s3.bucket)
    boto.close()
    port = int(s3.endpoint_url.rsplit(":", 1)[1])
    app = create_app(settings_for(database_dsn, data_dir, {"PHR_PUBLIC_URL": PUBLIC, **s3.env()}))
    try:
        async with (
            AsyncTestClient(app=app, base_url=PUBLIC) as client,
            httpx.AsyncClient(timeout=10) as http,
        ):
            patient = await register_patient(client)
            first = await upload(client, http, patient)
            done = await client.post(f"/v1/uploads/{first['id']}/complete", headers=patient.headers)
            assert done.status_code == 201, done.text
            record_id = done.json()["id"]
            second = await upload(client, http, patient)

            server.stop()  # S3 is gone
            caplog.set_level(logging.WARNING)
            for _ in range(3):
                started = time.monotonic()
                refused = await client.post(
                    f"/v1/uploads/{second['id']}/complete", headers=patient.headers
                )
                assert time.monotonic() - started < 20
                assert refused.status_code == 503, refused.text
                assert refused.headers["content-type"].startswith(PROBLEM)
                assert refused.headers["retry-after"].isdigit()
            timeline = await client.get("/v1/records", headers=patient.headers)
            assert timeline.status_code == 200
            assert [item["id"] for item in timeline.json()["items"]] == [record_id]
            assert (
                await client.get(f"/v1/records/{record_id}", headers=patient.headers)
            ).status_code == 200

            server, _ = start_s3(port)  # back, same address (moto keeps no data across restarts)
            boto = get_session().create_client(
                "s3",
                endpoint_url=s3.endpoint_url,
                region_name=s3.region,
                aws_access_key_id=s3.access_key_id,
                aws_secret_access_key=s3.secret_access_key,
            )
            boto.create_bucket(Bucket=s3.bucket)
            boto.put_object(
                Bucket=s3.bucket, Key=_key_of(second), Body=PDF, ContentType="application/pdf"
            )
            boto.close()
            done = await client.post(
                f"/v1/uploads/{second['id']}/complete", headers=patient.headers
            )
            assert done.status_code == 201, done.text
    finally:
        server.stop()
    began = [r for r in caplog.records if r.name == "phr.outage" and "unavailable" in r.message]
    assert len(began) == 1, [r.message for r in began]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"


def _key_of(started: dict) -> str:
    """The object key, from the presigned URL's path (path-style: /bucket/key)."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(started["uploadUrl"]).path.split("/", 2)[2])
