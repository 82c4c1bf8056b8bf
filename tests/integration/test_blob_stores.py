"""One contract for both object stores: local disk (served by phr's own signed-URL
routes, reached through the app's HTTP interface) and S3 (a real moto server on
loopback, reached over real HTTP with httpx). Each store is the one the app opens
in its lifespan from settings, so the factory is exercised too.

Refusals: the local routes answer them (403 problem+json). moto does not check
presigned URLs at all, so for S3 the same requests are judged by the independent
SigV4 verifier in tests/s3_server.py, which must also accept every request that
succeeds against moto."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient

from domain.blobs import BlobInfo, PresignedRequest
from domain.errors import InvalidBlobKey, NotFound, PresignExpiryTooLong
from domain.ports import BlobStore
from infra.blobs.local import LocalBlobStore
from infra.blobs.s3 import S3BlobStore
from tests.conftest import settings_for
from tests.s3_server import S3Server, presigned_refusal

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@dataclass
class Harness:
    name: str
    store: BlobStore
    client: AsyncTestClient  # the app
    http: httpx.AsyncClient | AsyncTestClient  # who carries presigned requests
    s3: S3Server | None

    async def send(
        self, presigned: PresignedRequest, *, content: bytes | None = None, **overrides: str
    ) -> httpx.Response:
        headers = {**presigned.headers, **overrides}
        return await self.http.request(
            presigned.method, presigned.url, headers=headers, content=content
        )

    async def assert_refused(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None = None,
    ) -> None:
        if self.s3 is None:
            response = await self.http.request(method, url, headers=headers, content=content)
            assert response.status_code == 403, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["type"].endswith("/blob-url-refused")
        else:
            sent = dict(headers)
            if content is not None:
                sent["Content-Length"] = str(len(content))
            assert presigned_refusal(self.s3, method, url, sent) is not None

    def assert_accepted(self, presigned: PresignedRequest, content: bytes | None = None) -> None:
        """For S3: the request that moto served is one S3 itself would accept."""
        if self.s3 is not None:
            sent = dict(presigned.headers)
            if content is not None:
                sent["Content-Length"] = str(len(content))
            refusal = presigned_refusal(self.s3, presigned.method, presigned.url, sent)
            assert refusal is None, refusal


@asynccontextmanager
async def open_harness(
    kind: str, database_dsn: str, data_dir: Path, s3_server: S3Server
) -> AsyncIterator[Harness]:
    from api.app import create_app

    app = create_app(settings_for(database_dsn, data_dir, s3_server.env() if kind == "s3" else {}))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        store = app.state.services.blobs
        if kind == "s3":
            assert isinstance(store, S3BlobStore)
            async with httpx.AsyncClient(timeout=10) as http:
                yield Harness("s3", store, client, http, s3_server)
        else:
            assert isinstance(store, LocalBlobStore)
            yield Harness("local", store, client, client, None)


@pytest.fixture(params=["local", "s3"])
async def harness(
    request: pytest.FixtureRequest, database_dsn: str, data_dir: Path, s3_server: S3Server
) -> AsyncIterator[Harness]:
    async with open_harness(request.param, database_dsn, data_dir, s3_server) as opened:
        yield opened


@pytest.fixture
async def local(database_dsn: str, data_dir: Path, s3_server: S3Server) -> AsyncIterator[Harness]:
    async with open_harness("local", database_dsn, data_dir, s3_server) as opened:
        yield opened


@pytest.fixture
async def s3(database_dsn: str, data_dir: Path, s3_server: S3Server) -> AsyncIterator[Harness]:
    async with open_harness("s3", database_dsn, data_dir, s3_server) as opened:
        yield opened


def new_key(patient: str | None = None) -> str:
    return f"patients/{patient or uuid.uuid4()}/uploads/{uuid.uuid4()}"


async def upload(
    harness: Harness, key: str, body: bytes, content_type: str = "application/pdf"
) -> None:
    presigned = await harness.store.presign_put(
        key, content_type=content_type, size=len(body), expires_in=timedelta(minutes=5)
    )
    response = await harness.send(presigned, content=body)
    assert response.status_code in (200, 204), response.text
    harness.assert_accepted(presigned, body)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- the round trip ---------------------------------------------------------


async def test_put_stat_get_round_trip(harness: Harness) -> None:
    key = new_key()
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=len(PDF), expires_in=timedelta(minutes=15)
    )
    assert put.method == "PUT"
    assert put.headers == {"Content-Type": "application/pdf"}
    response = await harness.send(put, content=PDF)
    assert response.status_code in (200, 204), response.text
    harness.assert_accepted(put, PDF)

    assert await harness.store.stat(key) == BlobInfo(
        key=key, size=len(PDF), content_type="application/pdf"
    )

    get = await harness.store.presign_get(
        key,
        expires_in=timedelta(minutes=5),
        filename="résultats scanner.pdf",
        content_type="application/pdf",
    )
    assert get.method == "GET"
    response = await harness.send(get)
    assert response.status_code == 200, response.text
    assert response.content == PDF
    assert response.headers["content-type"].startswith("application/pdf")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=UTF-8''r%C3%A9sultats%20scanner.pdf" in disposition
    harness.assert_accepted(get)


async def test_get_without_overrides_serves_stored_bytes(harness: Harness) -> None:
    key = new_key()
    await upload(harness, key, b"\x89PNG\r\n\x1a\n tiny", content_type="image/png")
    get = await harness.store.presign_get(key, expires_in=timedelta(minutes=1))
    response = await harness.send(get)
    assert response.status_code == 200
    assert response.content == b"\x89PNG\r\n\x1a\n tiny"
    assert response.headers["content-type"].startswith("image/png")


async def test_stat_of_missing_object_is_none(harness: Harness) -> None:
    assert await harness.store.stat(new_key()) is None


async def test_read_prefix_and_read(harness: Harness) -> None:
    key = new_key()
    await upload(harness, key, PDF)
    assert await harness.store.read_prefix(key, 8) == b"%PDF-1.7"
    assert await harness.store.read_prefix(key, len(PDF) + 100) == PDF
    assert await harness.store.read(key) == PDF
    with pytest.raises(NotFound):
        await harness.store.read_prefix(new_key(), 8)
    with pytest.raises(NotFound):
        await harness.store.read(new_key())


async def test_empty_object(harness: Harness) -> None:
    key = new_key()
    await upload(harness, key, b"", content_type="application/octet-stream")
    info = await harness.store.stat(key)
    assert info is not None and info.size == 0
    assert await harness.store.read_prefix(key, 16) == b""


async def test_overwrite_replaces_object(harness: Harness) -> None:
    key = new_key()
    await upload(harness, key, b"first version", content_type="text/plain")
    await upload(harness, key, b"second", content_type="image/jpeg")
    assert await harness.store.read(key) == b"second"
    assert await harness.store.stat(key) == BlobInfo(key=key, size=6, content_type="image/jpeg")


# --- refusals -----------------------------------------------------------------


async def test_expired_put_url_is_refused(harness: Harness) -> None:
    key = new_key()
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=len(PDF), expires_in=timedelta(seconds=1)
    )
    await asyncio.sleep(2.1)
    await harness.assert_refused("PUT", put.url, put.headers, PDF)
    if harness.s3 is None:
        assert await harness.store.stat(key) is None


async def test_expired_get_url_is_refused(harness: Harness) -> None:
    key = new_key()
    await upload(harness, key, PDF)
    get = await harness.store.presign_get(key, expires_in=timedelta(seconds=1))
    await asyncio.sleep(2.1)
    await harness.assert_refused("GET", get.url, {})


async def test_tampered_signature_is_refused(harness: Harness) -> None:
    key = new_key()
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=len(PDF), expires_in=timedelta(minutes=5)
    )
    param = "X-Amz-Signature" if harness.s3 else "sig"
    signature = dict(parse_qsl(urlsplit(put.url).query))[param]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await harness.assert_refused("PUT", with_query(put.url, **{param: flipped}), put.headers, PDF)

    await upload(harness, key, PDF)
    get = await harness.store.presign_get(key, expires_in=timedelta(minutes=1))
    signature = dict(parse_qsl(urlsplit(get.url).query))[param]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await harness.assert_refused("GET", with_query(get.url, **{param: flipped}), {})


async def test_changing_a_signed_value_is_refused(harness: Harness) -> None:
    """The key and the expiry are under the signature: moving either breaks it."""
    key = new_key()
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=len(PDF), expires_in=timedelta(minutes=5)
    )
    other_key = new_key()
    moved = put.url.replace(key, other_key)
    await harness.assert_refused("PUT", moved, put.headers, PDF)
    expiry_param = "X-Amz-Expires" if harness.s3 else "exp"
    current = int(dict(parse_qsl(urlsplit(put.url).query))[expiry_param])
    longer = with_query(put.url, **{expiry_param: str(current + 3600)})
    await harness.assert_refused("PUT", longer, put.headers, PDF)
    if harness.s3 is None:
        assert await harness.store.stat(other_key) is None


async def test_put_with_another_content_type_is_refused(harness: Harness) -> None:
    key = new_key()
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=len(PDF), expires_in=timedelta(minutes=5)
    )
    await harness.assert_refused("PUT", put.url, {"Content-Type": "text/html"}, PDF)
    if harness.s3 is None:
        assert await harness.store.stat(key) is None


async def test_put_with_another_size_is_refused(harness: Harness) -> None:
    """S3 signs Content-Length; the local route counts the body (413 when longer)."""
    key = new_key()
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=10, expires_in=timedelta(minutes=5)
    )
    if harness.s3 is not None:
        await harness.assert_refused("PUT", put.url, put.headers, b"x" * 11)
        await harness.assert_refused("PUT", put.url, put.headers, b"x" * 9)
        return
    longer = await harness.send(put, content=b"x" * 11)
    assert longer.status_code == 413, longer.text
    assert longer.headers["content-type"].startswith("application/problem+json")
    shorter = await harness.send(put, content=b"x" * 9)
    assert shorter.status_code == 422, shorter.text
    assert shorter.json()["type"].endswith("/blob-size-mismatch")
    assert await harness.store.stat(key) is None


# --- deletion -------------------------------------------------------------------


async def test_delete(harness: Harness) -> None:
    key = new_key()
    await upload(harness, key, PDF)
    await harness.store.delete(key)
    assert await harness.store.stat(key) is None
    await harness.store.delete(key)  # deleting again is not an error
    get = await harness.store.presign_get(key, expires_in=timedelta(minutes=1))
    response = await harness.send(get)
    assert response.status_code == 404


async def test_delete_prefix_erases_one_patient_only(harness: Harness) -> None:
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    erased_keys = [new_key(erased) for _ in range(3)] + [f"patients/{erased}/dicom/a/b/c.dcm"]
    kept_key = new_key(kept)
    for key in [*erased_keys, kept_key]:
        await upload(harness, key, key.encode())
    # A sibling whose name starts with the erased id must survive: a prefix is a folder.
    sibling = f"patients/{erased}x/uploads/{uuid.uuid4()}"
    await upload(harness, sibling, b"sibling")

    await harness.store.delete_prefix(f"patients/{erased}/")

    for key in erased_keys:
        assert await harness.store.stat(key) is None
    assert await harness.store.read(kept_key) == kept_key.encode()
    assert await harness.store.read(sibling) == b"sibling"
    await harness.store.delete_prefix(f"patients/{erased}/")  # nothing left: no error


# --- inputs the stores refuse -------------------------------------------------------

BAD_KEYS = [
    "",
    "/patients/a",
    "patients/../etc/passwd",
    "patients/..",
    "patients/./a",
    "patients//a",
    "patients/a/",
    "patients/.hidden",
    "patients/a b",
    "patients/a%2F..",
    "patients\\a",
    "patients/é",
    "patients/a\nb",
    "a" * 513,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_rejected(harness: Harness, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        await harness.store.presign_put(
            key, content_type="application/pdf", size=1, expires_in=timedelta(minutes=1)
        )
    with pytest.raises(InvalidBlobKey):
        await harness.store.presign_get(key, expires_in=timedelta(minutes=1))
    with pytest.raises(InvalidBlobKey):
        await harness.store.stat(key)
    with pytest.raises(InvalidBlobKey):
        await harness.store.read_prefix(key, 4)
    with pytest.raises(InvalidBlobKey):
        await harness.store.delete(key)


@pytest.mark.parametrize("prefix", ["", "/", "patients", "patients/../", "../", "patients//"])
async def test_bad_prefixes_are_rejected(harness: Harness, prefix: str) -> None:
    with pytest.raises(InvalidBlobKey):
        await harness.store.delete_prefix(prefix)


async def test_expiry_caps(harness: Harness) -> None:
    key = new_key()
    with pytest.raises(PresignExpiryTooLong):
        await harness.store.presign_put(
            key, content_type="application/pdf", size=1, expires_in=timedelta(minutes=15, seconds=1)
        )
    with pytest.raises(PresignExpiryTooLong):
        await harness.store.presign_get(key, expires_in=timedelta(minutes=5, seconds=1))
    put = await harness.store.presign_put(
        key, content_type="application/pdf", size=1, expires_in=timedelta(minutes=15)
    )
    get = await harness.store.presign_get(key, expires_in=timedelta(minutes=5))
    assert put.expires_at > get.expires_at


# --- local only ---------------------------------------------------------------------


async def test_local_signing_key_is_private_and_outside_the_database(
    local: Harness, data_dir: Path
) -> None:
    harness = local
    key_file = data_dir / "keys" / "blob-url.key"
    assert key_file.stat().st_size == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "keys").stat().st_mode) == 0o700
    # A second start reuses the key: URLs issued before a restart stay valid.
    reopened = LocalBlobStore.open(data_dir, "http://testserver.local", _system_clock())
    object_key = new_key()
    await upload(harness, object_key, b"kept across restarts", content_type="text/plain")
    get = await reopened.presign_get(object_key, expires_in=timedelta(minutes=1))
    response = await harness.client.get(get.url)
    assert response.status_code == 200
    assert response.content == b"kept across restarts"


async def test_local_upload_lands_under_files_and_leaves_no_temporaries(
    local: Harness, data_dir: Path
) -> None:
    harness = local
    key = new_key()
    body = os.urandom(3 * 1024 * 1024 + 17)  # several write batches
    await upload(harness, key, body, content_type="application/dicom")
    path = data_dir / "files" / key
    assert path.read_bytes() == body
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, f".{path.name}.meta"]
    )
    # A refused (too long) upload leaves nothing behind either.
    put = await harness.store.presign_put(
        new_key(), content_type="application/pdf", size=4, expires_in=timedelta(minutes=1)
    )
    response = await harness.send(put, content=b"12345")
    assert response.status_code == 413
    assert not any(p.name.startswith(".upload-") for p in (data_dir / "files").rglob("*"))


async def test_local_get_headers_keep_uploads_inert(local: Harness) -> None:
    harness = local
    key = new_key()
    await upload(harness, key, b"<script>alert(1)</script>", content_type="text/html")
    get = await harness.store.presign_get(key, expires_in=timedelta(minutes=1))
    response = await harness.send(get)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "private, no-store"


async def test_local_url_without_signature_is_refused(local: Harness) -> None:
    harness = local
    key = new_key()
    await upload(harness, key, b"data", content_type="text/plain")
    response = await harness.client.get(f"/v1/blobs/{key}")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    # A PUT URL cannot be replayed as a GET: the method is signed.
    put = await harness.store.presign_put(
        key, content_type="text/plain", size=4, expires_in=timedelta(minutes=1)
    )
    response = await harness.client.get(put.url)
    assert response.status_code == 403


async def test_local_routes_answer_404_when_s3_is_configured(s3: Harness) -> None:
    response = await s3.client.get(f"/v1/blobs/{new_key()}?exp=1&sig=x")
    assert response.status_code == 404


def _system_clock():  # type: ignore[no-untyped-def]
    from domain.clock import SystemClock

    return SystemClock()
