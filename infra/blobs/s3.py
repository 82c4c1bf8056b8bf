"""Objects in an S3 bucket (AWS, or any S3-protocol server such as MinIO), through
one aiobotocore client opened at start and closed at shutdown.

Presigned PUT URLs sign the Content-Type (and Content-Length) headers, so a
client that sends another type or length breaks the signature on a server that
checks it (AWS does). A presigned PUT cannot cap the body size by itself beyond
that signed header: the upload's `complete` step re-checks the size with
`stat`, and that check is the one that counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from domain.blobs import (
    BlobInfo,
    PresignedRequest,
    checked_expiry,
    validate_content_type,
    validate_filename,
    validate_key,
    validate_prefix,
    validate_upload_size,
)
from domain.errors import NotFound
from domain.ports import Clock
from infra.settings import S3Settings

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
# DeleteObjects takes at most 1000 keys per call.
_DELETE_BATCH = 1000


def _is_aws(endpoint_url: str | None) -> bool:
    if endpoint_url is None:
        return True
    host = urlsplit(endpoint_url).hostname or ""
    return host.endswith(".amazonaws.com")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def content_disposition(filename: str) -> str:
    """RFC 6266 / 8187: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\;' else "_" for ch in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3BlobStore:
    def __init__(self, client: Any, bucket: str, clock: Clock, exit_stack: AsyncExitStack):
        self._client = client
        self._bucket = bucket
        self._clock = clock
        self._exit_stack = exit_stack

    @classmethod
    async def open(cls, settings: S3Settings, clock: Clock) -> S3BlobStore:
        # Path-style for anything but AWS: MinIO and friends rarely have a DNS
        # name per bucket. SigV4 everywhere (presigned URLs included).
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "auto" if _is_aws(settings.endpoint_url) else "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            # Bounded: an endpoint that is down costs a request seconds, then 503.
            connect_timeout=5,
            read_timeout=30,
        )
        exit_stack = AsyncExitStack()
        client = await exit_stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                config=config,
            )
        )
        return cls(client, settings.bucket, clock, exit_stack)

    async def close(self) -> None:
        await self._exit_stack.aclose()

    def _expires_at(self, seconds: int) -> datetime:
        now = self._clock.now().astimezone(UTC).replace(microsecond=0)
        return now + timedelta(seconds=seconds)

    async def presign_put(
        self, key: str, *, content_type: str, size: int, expires_in: timedelta
    ) -> PresignedRequest:
        validate_key(key)
        validate_content_type(content_type)
        validate_upload_size(size)
        seconds = checked_expiry("PUT", expires_in)
        url = await self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=seconds,
            HttpMethod="PUT",
        )
        return PresignedRequest(
            method="PUT",
            url=url,
            # Content-Length is signed too, but every HTTP client sets it from
            # the body (browsers refuse to let scripts set it at all).
            headers={"Content-Type": content_type},
            expires_at=self._expires_at(seconds),
        )

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: timedelta,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> PresignedRequest:
        validate_key(key)
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if content_type is not None:
            params["ResponseContentType"] = validate_content_type(content_type)
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(validate_filename(filename))
        seconds = checked_expiry("GET", expires_in)
        url = await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=seconds, HttpMethod="GET"
        )
        return PresignedRequest(
            method="GET", url=url, headers={}, expires_at=self._expires_at(seconds)
        )

    async def stat(self, key: str) -> BlobInfo | None:
        validate_key(key)
        try:
            head = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise
        return BlobInfo(
            key=key, size=int(head["ContentLength"]), content_type=head.get("ContentType")
        )

    async def read_prefix(self, key: str, length: int) -> bytes:
        validate_key(key)
        if length < 0:
            raise ValueError("length must not be negative")
        if length == 0:
            if await self.stat(key) is None:
                raise NotFound("No such object.")
            return b""
        try:
            return await self._get(key, Range=f"bytes=0-{length - 1}")
        except ClientError as exc:
            # An empty object has no byte 0: S3 answers 416 to any range.
            if _error_code(exc) == "InvalidRange":
                return b""
            raise

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """A whole object written by phr itself (a share's ciphertext)."""
        validate_key(key)
        validate_content_type(content_type)
        await self._client.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType=content_type
        )

    async def read(self, key: str) -> bytes:
        validate_key(key)
        return await self._get(key)

    async def _get(self, key: str, **extra: str) -> bytes:
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=key, **extra)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise NotFound("No such object.") from None
            raise
        async with response["Body"] as body:
            return await body.read()

    async def stream(self, key: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        validate_key(key)
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise NotFound("No such object.") from None
            raise
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            # S3 answers 204 for a missing key; other servers may say 404.
            if _error_code(exc) not in _MISSING_CODES:
                raise

    async def finalize(self, key: str, final_key: str) -> None:
        validate_key(key)
        validate_key(final_key)
        try:
            await self._client.copy_object(
                Bucket=self._bucket,
                Key=final_key,
                CopySource={"Bucket": self._bucket, "Key": key},
                MetadataDirective="COPY",
            )
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise NotFound("No such object.") from None
            raise
        await self.delete(key)

    async def seal_prefix(self, prefix: str) -> None:
        # A presigned PUT cannot be revoked; erasure's second sweep removes what
        # one puts back.
        validate_prefix(prefix)

    async def delete_prefix(self, prefix: str) -> None:
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        batch: list[dict[str, str]] = []
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                batch.append({"Key": item["Key"]})
                if len(batch) == _DELETE_BATCH:
                    await self._delete_batch(batch)
                    batch = []
        if batch:
            await self._delete_batch(batch)

    async def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        response = await self._client.delete_objects(
            Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = response.get("Errors") or []
        if errors:
            raise RuntimeError(f"{len(errors)} object(s) could not be deleted from the bucket")
