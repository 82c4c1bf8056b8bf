"""A real S3-protocol server on loopback for the tests: moto's server, started
once per test session, with a bucket made for the run.

moto (5.2) serves presigned URLs but does not check them: it accepts an expired
URL, a tampered signature and a Content-Type other than the signed one (measured
while writing tests/integration/test_blob_stores.py). So the refusals S3 makes
are checked with `presigned_refusal` below: an independent SigV4 query-string
verifier written from AWS's specification, which first has to accept every
request the tests send to moto successfully."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from infra.settings import S3Settings

REGION = "us-east-1"
ACCESS_KEY_ID = "phr-test-access-key"
SECRET_ACCESS_KEY = "phr-test-secret-key"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    region: str = REGION
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY

    def settings(self) -> S3Settings:
        return S3Settings(
            endpoint_url=self.endpoint_url,
            bucket=self.bucket,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def env(self) -> dict[str, str]:
        """The environment that configures phr for this server (load_settings)."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from botocore.session import get_session
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(endpoint_url=f"http://{host}:{port}", bucket=f"phr-{uuid.uuid4().hex[:12]}")
        client = get_session().create_client(
            "s3",
            endpoint_url=s3.endpoint_url,
            region_name=s3.region,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
        )
        try:
            client.create_bucket(Bucket=s3.bucket)
        finally:
            client.close()
        yield s3
    finally:
        server.stop()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def presigned_refusal(
    server: S3Server,
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> str | None:
    """Why S3 would refuse this request made with a presigned SigV4 URL, or None
    if it would accept it. `headers` are those the client sends (Content-Length
    included when there is a body). Follows "Authenticating Requests: Using
    Query Parameters (AWS Signature Version 4)"."""
    now = now or datetime.now(UTC)
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "unsupported algorithm"
    try:
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
        access_key, date, region, service, terminal = params["X-Amz-Credential"].split("/")
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        return "malformed presigned URL"
    if access_key != server.access_key_id or region != server.region or service != "s3":
        return "wrong credential scope"
    if expires > 7 * 24 * 3600:
        return "expiry beyond the SigV4 maximum"
    if now > signed_at + timedelta(seconds=expires):
        return "expired"

    lowered = {name.lower(): value for name, value in headers.items()}
    lowered.setdefault("host", parts.netloc)
    canonical_headers = ""
    for name in signed_headers:
        if name not in lowered:
            return f"signed header {name} not sent"
        canonical_headers += f"{name}:{' '.join(str(lowered[name]).split())}\n"
    canonical_query = "&".join(
        sorted(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in query if k != "X-Amz-Signature")
    )
    canonical_request = "\n".join(
        [
            method.upper(),
            parts.path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{date}/{region}/{service}/{terminal}"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, _sha256_hex(canonical_request.encode())]
    )
    key = _hmac(("AWS4" + server.secret_access_key).encode(), date)
    for part in (region, service, terminal):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "signature does not match"
    return None
