"""Chooses the object store from settings: S3 when a bucket is configured,
otherwise files on local disk under `<data_dir>/files`."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from domain.ports import BlobStore, Clock
from infra.blobs.local import LocalBlobStore
from infra.blobs.s3 import S3BlobStore
from infra.settings import Settings


@runtime_checkable
class OpenBlobStore(BlobStore, Protocol):
    """A store as the composition root holds it: the port, plus `close()` for
    shutdown. Runtime-checkable because Litestar validates the Services fields."""

    async def close(self) -> None: ...


async def open_blob_store(settings: Settings, clock: Clock) -> OpenBlobStore:
    """Opened once at start (in open_services); call `close()` at shutdown."""
    if settings.s3 is not None:
        return await S3BlobStore.open(settings.s3, clock)
    return await asyncio.to_thread(
        LocalBlobStore.open, settings.data_dir, settings.public_url, clock
    )
