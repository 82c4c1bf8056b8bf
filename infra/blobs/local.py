"""Files on local disk under `<data_dir>/files/<key>`, for installs without S3.

phr serves these itself through `/v1/blobs/<key>` (api/routes/local_blobs.py).
The URLs it hands out carry an expiry and an HMAC-SHA256 over everything the
request may do (method, key, expiry, content type, size or download name), so
like S3 presigned URLs they are the whole authority: no bearer token. The HMAC
key lives in `<data_dir>/keys/blob-url.key`, outside the database, so a database
dump alone cannot mint URLs.

Each object has a sidecar `.<name>.meta` (JSON: content type) beside it. Key
segments never start with "." (domain.blobs.validate_key), so sidecars and the
`.upload-*` temporary files can never collide with a key."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlencode

import msgspec

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
from domain.errors import BlobSizeMismatch, BlobUrlRefused, Conflict, NotFound
from domain.ports import Clock

SIGNING_KEY_BYTES = 32
# Bytes gathered from the request before one write in a worker thread: bounds
# memory per upload while keeping thread hops few.
WRITE_BATCH_BYTES = 1024 * 1024


class _Meta(msgspec.Struct, rename="camel"):
    content_type: str | None


class LocalFile(msgspec.Struct, frozen=True):
    path: Path
    info: BlobInfo


def load_signing_key(data_dir: Path) -> bytes:
    """The URL-signing key, created (0600, in a 0700 folder) on first use. Made
    in a temporary file and linked into place, so concurrent workers starting
    together agree on one key and none reads a half-written file."""
    folder = data_dir / "keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "blob-url.key"
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    temporary = folder / f".blob-url.key.{secrets.token_hex(8)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(SIGNING_KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != SIGNING_KEY_BYTES:
        raise RuntimeError(f"{path} does not hold a {SIGNING_KEY_BYTES}-byte key")
    return key


class LocalBlobStore:
    def __init__(self, root: Path, public_url: str, signing_key: bytes, clock: Clock):
        self._root = root
        self._public_url = public_url.rstrip("/")
        self._signing_key = signing_key
        self._clock = clock

    @classmethod
    def open(cls, data_dir: Path, public_url: str, clock: Clock) -> LocalBlobStore:
        root = data_dir / "files"
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(root.resolve(), public_url, load_signing_key(data_dir), clock)

    async def close(self) -> None:
        """Nothing to release; here so every adapter closes the same way."""

    # --- signing -----------------------------------------------------------

    def _signature(
        self,
        method: Literal["PUT", "GET"],
        key: str,
        exp: int,
        content_type: str | None,
        size: int | None,
        filename: str | None,
    ) -> str:
        # A JSON array is an unambiguous encoding: no field can bleed into the next.
        message = msgspec.json.encode([method, key, exp, content_type, size, filename])
        digest = hmac.new(self._signing_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _url(self, key: str, params: dict[str, str | int]) -> str:
        return f"{self._public_url}/v1/blobs/{quote(key, safe='/')}?{urlencode(params)}"

    def _expiry(self, method: Literal["PUT", "GET"], expires_in: timedelta) -> tuple[int, datetime]:
        seconds = checked_expiry(method, expires_in)
        exp = int(self._clock.now().timestamp()) + seconds
        return exp, datetime.fromtimestamp(exp, UTC)

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
    ) -> None:
        """BlobUrlRefused unless `sig` is this store's signature over exactly
        these values and `exp` has not passed. Compared in constant time."""
        if exp is None or not sig:
            raise BlobUrlRefused("The URL carries no signature.")
        expected = self._signature(method, key, exp, content_type, size, filename)
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            raise BlobUrlRefused("The URL signature does not match.")
        if self._clock.now().timestamp() > exp:
            raise BlobUrlRefused("The URL has expired.")

    # --- BlobStore ----------------------------------------------------------

    async def presign_put(
        self, key: str, *, content_type: str, size: int, expires_in: timedelta
    ) -> PresignedRequest:
        validate_key(key)
        validate_content_type(content_type)
        validate_upload_size(size)
        exp, expires_at = self._expiry("PUT", expires_in)
        sig = self._signature("PUT", key, exp, content_type, size, None)
        url = self._url(key, {"exp": exp, "ct": content_type, "size": size, "sig": sig})
        return PresignedRequest(
            method="PUT", url=url, headers={"Content-Type": content_type}, expires_at=expires_at
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
        if content_type is not None:
            validate_content_type(content_type)
        if filename is not None:
            validate_filename(filename)
        exp, expires_at = self._expiry("GET", expires_in)
        sig = self._signature("GET", key, exp, content_type, None, filename)
        params: dict[str, str | int] = {"exp": exp}
        if content_type is not None:
            params["ct"] = content_type
        if filename is not None:
            params["fn"] = filename
        params["sig"] = sig
        return PresignedRequest(
            method="GET", url=self._url(key, params), headers={}, expires_at=expires_at
        )

    async def stat(self, key: str) -> BlobInfo | None:
        validate_key(key)
        found = await asyncio.to_thread(self._stat, key)
        return found.info if found else None

    async def local_file(self, key: str) -> LocalFile | None:
        """Where the object lives on disk, for the route that streams it."""
        validate_key(key)
        return await asyncio.to_thread(self._stat, key)

    async def read_prefix(self, key: str, length: int) -> bytes:
        validate_key(key)
        if length < 0:
            raise ValueError("length must not be negative")
        return await asyncio.to_thread(self._read, key, length)

    async def read(self, key: str) -> bytes:
        validate_key(key)
        return await asyncio.to_thread(self._read, key, -1)

    async def stream(self, key: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        validate_key(key)
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound("No such object.") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        validate_key(key)
        path = self._path(key)
        await asyncio.to_thread(self._delete, path)

    async def finalize(self, key: str, final_key: str) -> None:
        validate_key(key)
        validate_key(final_key)
        await asyncio.to_thread(self._finalize, self._path(key), self._path(final_key))

    async def seal_prefix(self, prefix: str) -> None:
        validate_prefix(prefix)
        folder = self._path(prefix[:-1])
        await asyncio.to_thread(self._seal_folder, folder)

    async def delete_prefix(self, prefix: str) -> None:
        validate_prefix(prefix)
        folder = self._path(prefix[:-1])
        await asyncio.to_thread(self._delete_tree, folder)

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """A whole object written by phr itself (a share's ciphertext): the same
        temporary-file-then-rename as `write`, in one worker-thread hop."""
        validate_key(key)
        validate_content_type(content_type)
        await asyncio.to_thread(self._put, self._path(key), data, content_type)

    def _put(self, path: Path, data: bytes, content_type: str) -> None:
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise Conflict("Another object occupies part of this key's path.") from None
        temporary = path.parent / f".upload-{secrets.token_hex(8)}"
        try:
            with open(temporary, "xb") as handle:
                handle.write(data)
                _flush(handle)
            self._commit(path, temporary, content_type)
        finally:
            temporary.unlink(missing_ok=True)

    async def write(
        self, key: str, *, content_type: str, size: int, chunks: AsyncIterator[bytes]
    ) -> BlobInfo:
        """Stores the stream as `key`: written to a temporary file in the target
        folder (in a worker thread, a batch at a time), then renamed into place,
        so readers see the old object or the whole new one, never a part.
        BlobSizeMismatch if the stream does not have exactly `size` bytes."""
        validate_key(key)
        validate_content_type(content_type)
        path = self._path(key)
        if self._sealed_path(path).exists():
            raise _completed()
        if self._under_sealed_folder(path):
            raise BlobUrlRefused("This upload URL no longer works.")
        try:
            await asyncio.to_thread(path.parent.mkdir, mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise Conflict("Another object occupies part of this key's path.") from None
        temporary = path.parent / f".upload-{secrets.token_hex(8)}"
        handle = await asyncio.to_thread(open, temporary, "xb")
        written = 0
        try:
            try:
                batch = bytearray()
                async for chunk in chunks:
                    written += len(chunk)
                    if written > size:
                        raise BlobSizeMismatch(
                            f"The upload is longer than the {size} bytes signed."
                        )
                    batch += chunk
                    if len(batch) >= WRITE_BATCH_BYTES:
                        await asyncio.to_thread(handle.write, bytes(batch))
                        batch.clear()
                if batch:
                    await asyncio.to_thread(handle.write, bytes(batch))
                if written != size:
                    raise BlobSizeMismatch(f"The upload has {written} bytes; {size} were signed.")
                await asyncio.to_thread(_flush, handle)
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(self._commit, path, temporary, content_type)
        except BaseException:
            await asyncio.to_thread(temporary.unlink, True)
            raise
        return BlobInfo(key=key, size=written, content_type=content_type)

    # --- blocking helpers, run in worker threads -----------------------------

    def _path(self, key: str) -> Path:
        path = self._root / key
        # validate_key already forbids traversal; this guards against a symlink
        # planted inside the store pointing elsewhere.
        if not path.resolve().is_relative_to(self._root):
            raise NotFound("No such object.")
        return path

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.meta")

    @staticmethod
    def _sealed_path(path: Path) -> Path:
        # Left where a completed upload was: no write to that key is taken again.
        return path.with_name(f".{path.name}.sealed")

    @staticmethod
    def _folder_seal(folder: Path) -> Path:
        # Named by a hash of the folder's name: the marker of an erased account's
        # folder does not spell out whose it was.
        digest = hashlib.sha256(folder.name.encode()).hexdigest()[:32]
        return folder.parent / f".erased-{digest}"

    def _seal_folder(self, folder: Path) -> None:
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._folder_seal(folder).touch()

    def _under_sealed_folder(self, path: Path) -> bool:
        folder = path.parent
        while folder != self._root and folder.is_relative_to(self._root):
            if self._folder_seal(folder).exists():
                return True
            folder = folder.parent
        return False

    def _finalize(self, path: Path, final: Path) -> None:
        self._sealed_path(path).touch()
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.replace(path, final)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound("No such object.") from None
        with contextlib.suppress(FileNotFoundError):
            os.replace(self._meta_path(path), self._meta_path(final))

    def _stat(self, key: str) -> LocalFile | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        try:
            meta = msgspec.json.decode(self._meta_path(path).read_bytes(), type=_Meta)
            content_type = meta.content_type
        except (FileNotFoundError, msgspec.DecodeError):
            content_type = None
        return LocalFile(
            path=path, info=BlobInfo(key=key, size=st.st_size, content_type=content_type)
        )

    def _read(self, key: str, length: int) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as handle:
                return handle.read(length)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound("No such object.") from None

    def _commit(self, path: Path, temporary: Path, content_type: str) -> None:
        if self._sealed_path(path).exists():
            raise _completed()
        if self._under_sealed_folder(path):
            raise BlobUrlRefused("This upload URL no longer works.")
        meta_temporary = path.parent / f".meta-{secrets.token_hex(8)}"
        try:
            meta_temporary.write_bytes(msgspec.json.encode(_Meta(content_type=content_type)))
            os.replace(meta_temporary, self._meta_path(path))
        finally:
            meta_temporary.unlink(missing_ok=True)
        try:
            os.replace(temporary, path)
        except (IsADirectoryError, OSError) as exc:
            if path.is_dir():
                raise Conflict("Another object occupies part of this key's path.") from exc
            raise

    def _delete(self, path: Path) -> None:
        if path.is_dir():
            return  # a key is never a folder; delete_prefix removes folders
        path.unlink(missing_ok=True)
        self._meta_path(path).unlink(missing_ok=True)

    def _delete_tree(self, folder: Path) -> None:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)


def _completed() -> BlobUrlRefused:
    return BlobUrlRefused("This upload is complete; its file can no longer be written.")


def _flush(handle) -> None:  # type: ignore[no-untyped-def]
    handle.flush()
    os.fsync(handle.fileno())
