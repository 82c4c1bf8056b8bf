"""The local object store's signed URLs: what S3 does for presigned requests,
phr does here when no bucket is configured. No bearer token: the signature in
the query string (infra.blobs.local) is the whole authority, and it binds the
method, key, expiry, content type and size (PUT) or download name (GET).

When S3 is configured these routes answer 404: the URLs handed out point at S3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable
from urllib.parse import quote

from litestar import Request, get, put
from litestar.di import NamedDependency
from litestar.exceptions import (
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import Parameter
from litestar.response import File

from domain.blobs import MAX_UPLOAD_BYTES, BlobInfo
from domain.errors import BlobSizeMismatch, BlobUrlRefused

ExpiryParam = Annotated[
    int | None, Parameter(description="Expiry of the URL, Unix seconds (signed).")
]
SignatureParam = Annotated[
    str | None, Parameter(description="HMAC-SHA256 of the signed values, base64url.")
]
KeyParam = Annotated[str, Parameter(description="The object key, e.g. patients/<id>/uploads/<id>.")]


class LocalFile(Protocol):
    path: Path
    info: BlobInfo


@runtime_checkable  # Litestar checks a dependency's type
class SignedLocalFiles(Protocol):
    """The local blob store as these routes use it (infra.blobs.local)."""

    def verify(
        self,
        method: Literal["PUT", "GET"],
        key: str,
        *,
        exp: int | None,
        sig: str | None,
        content_type: str | None = None,
        size: int | None = None,
        filename: str | None = None,
    ) -> None: ...

    async def write(
        self, key: str, *, content_type: str, size: int, chunks: AsyncIterator[bytes]
    ) -> BlobInfo: ...

    async def local_file(self, key: str) -> LocalFile | None: ...


# The local store when phr keeps files on its own disk; None when they are in S3.
LocalFilesDep = NamedDependency[SignedLocalFiles | None]


def _local_store(local_files: SignedLocalFiles | None) -> SignedLocalFiles:
    if local_files is None:
        raise NotFoundException("Files are stored in S3; this service does not serve them.")
    return local_files


def _key(raw: str) -> str:
    # `{key:path}` keeps the leading "/" of the path segment.
    return raw[1:] if raw.startswith("/") else raw


def _attachment(filename: str | None) -> str:
    if not filename:
        return "attachment"
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


async def _bounded(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, refused with 413 the moment it passes `limit`."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise RequestEntityTooLarge(f"The body is longer than the {limit} bytes signed.")
        yield chunk


@put(
    "/v1/blobs/{key:path}",
    operation_id="putLocalBlob",
    summary="Upload a file through a signed URL issued by phr (local storage)",
    description="The target of a presigned upload when phr stores files on its own disk. "
    "Send exactly the signed Content-Type and the signed number of bytes.",
    tags=["blobs"],
    status_code=204,
    request_max_body_size=MAX_UPLOAD_BYTES,
    raises=[
        PermissionDeniedException,
        NotFoundException,
        RequestEntityTooLarge,
        ValidationException,
    ],
    security=[],
)
async def put_local_blob(
    request: Request[Any, Any, Any],
    local_files: LocalFilesDep,
    key: KeyParam,
    exp: ExpiryParam = None,
    sig: SignatureParam = None,
    ct: Annotated[str | None, Parameter(description="The signed Content-Type.")] = None,
    size: Annotated[int | None, Parameter(description="The signed size in bytes.")] = None,
) -> None:
    store = _local_store(local_files)
    key = _key(key)
    store.verify("PUT", key, exp=exp, sig=sig, content_type=ct, size=size)
    if ct is None or size is None:
        raise BlobUrlRefused("The URL does not sign a content type and size.")
    if request.headers.get("content-type") != ct:
        raise BlobUrlRefused("The Content-Type differs from the one signed.")
    announced = request.content_length
    if announced is not None and announced > size:
        raise RequestEntityTooLarge(f"The body is longer than the {size} bytes signed.")
    if announced is not None and announced < size:
        raise BlobSizeMismatch(f"The body has {announced} bytes; {size} were signed.")
    await store.write(key, content_type=ct, size=size, chunks=_bounded(request.stream(), size))


@get(
    "/v1/blobs/{key:path}",
    operation_id="getLocalBlob",
    summary="Download a file through a signed URL issued by phr (local storage)",
    description="The target of a presigned download when phr stores files on its own disk; "
    "always an attachment, with the signed content type and file name.",
    tags=["blobs"],
    raises=[PermissionDeniedException, NotFoundException, ValidationException],
    security=[],
)
async def get_local_blob(
    local_files: LocalFilesDep,
    key: KeyParam,
    exp: ExpiryParam = None,
    sig: SignatureParam = None,
    ct: Annotated[
        str | None, Parameter(description="The Content-Type to answer with (signed).")
    ] = None,
    fn: Annotated[str | None, Parameter(description="The download file name (signed).")] = None,
) -> File:
    store = _local_store(local_files)
    key = _key(key)
    store.verify("GET", key, exp=exp, sig=sig, content_type=ct, filename=fn)
    found = await store.local_file(key)
    if found is None:
        raise NotFoundException("No such file.")
    return File(
        path=found.path,
        media_type=ct or found.info.content_type or "application/octet-stream",
        headers={
            "Content-Disposition": _attachment(fn),
            # Uploaded files are the patient's, not ours: never let a browser
            # render them as active content on our origin.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )
