"""Zip archives (a patient's CD) from the blob store, checked and unpacked off the
event loop.

The object is copied to a private temporary file first (zip needs to seek to its
central directory at the end). `inspect` judges the directory alone; `unpack`
inflates every entry in a worker thread, counting the real bytes as they come
(a directory can lie about sizes), refusing nested archives by content, and
keeps only the entries that carry DICOM's "DICM" preamble, each in a file of
its own, so memory holds one instance at a time."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from domain.imaging.dicom import looks_like_dicom
from domain.imaging.dicom_archive import (
    ArchiveEntry,
    ArchiveLimits,
    HostileArchive,
    check_content,
    check_listing,
    check_ratio,
)
from domain.imaging.ports import ImagingBlobStore

_CHUNK = 1024 * 1024


class UnpackedArchive:
    def __init__(self, files: list[tuple[str, Path]], ignored: int):
        self._files = files
        self.ignored = ignored
        self.count = len(files)

    async def dicom_files(self) -> AsyncIterator[tuple[str, bytes]]:
        for name, path in self._files:
            yield name, await asyncio.to_thread(path.read_bytes)


def _entries(archive: zipfile.ZipFile) -> list[ArchiveEntry]:
    return [
        ArchiveEntry(
            name=info.filename,
            compressed_size=info.compress_size,
            size=info.file_size,
            mode=(info.external_attr >> 16) & 0xFFFF,
            is_dir=info.is_dir(),
        )
        for info in archive.infolist()
    ]


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise HostileArchive(
            f"The file is not a readable zip archive ({type(exc).__name__})."
        ) from None


def _inspect(path: Path, limits: ArchiveLimits) -> int:
    with _open(path) as archive:
        entries = _entries(archive)
    check_listing(entries, limits)
    return len(entries)


def _unpack(path: Path, folder: Path, limits: ArchiveLimits) -> UnpackedArchive:
    files: list[tuple[str, Path]] = []
    ignored = 0
    total = 0
    with _open(path) as archive:
        check_listing(_entries(archive), limits)
        for number, info in enumerate(archive.infolist()):
            if info.is_dir():
                continue
            target = folder / f"{number:06d}"
            written = 0
            prefix = b""
            try:
                with archive.open(info) as source, target.open("xb") as sink:
                    while chunk := source.read(_CHUNK):
                        if len(prefix) < 132:
                            prefix += chunk[: 132 - len(prefix)]
                            check_content(info.filename, prefix)
                        written += len(chunk)
                        total += len(chunk)
                        check_ratio(info.filename, written, info.compress_size, limits)
                        if total > limits.max_expanded_bytes:
                            raise HostileArchive(
                                f"The archive expands to more than {limits.max_expanded_bytes} bytes."
                            )
                        sink.write(chunk)
            except HostileArchive:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                # An encrypted or damaged entry: refused, like the archive it came in.
                raise HostileArchive(
                    f"An entry could not be unpacked ({type(exc).__name__})."
                ) from None
            if looks_like_dicom(prefix):
                files.append((info.filename, target))
            else:
                ignored += 1
                target.unlink()
    return UnpackedArchive(files, ignored)


class ZipArchives:
    def __init__(self, blobs: ImagingBlobStore, limits: ArchiveLimits):
        self._blobs = blobs
        self.limits = limits

    @asynccontextmanager
    async def _local_copy(self) -> AsyncIterator[Path]:
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="phr-cd-"))
        try:
            yield folder
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _download(self, key: str, path: Path) -> None:
        handle = await asyncio.to_thread(open, path, "xb")
        try:
            async for chunk in self._blobs.stream(key):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)

    async def inspect(self, key: str) -> int:
        """The number of entries; HostileArchive naming the problem otherwise."""
        async with self._local_copy() as folder:
            path = folder / "archive.zip"
            await self._download(key, path)
            return await asyncio.to_thread(_inspect, path, self.limits)

    @asynccontextmanager
    async def unpack(self, key: str) -> AsyncIterator[UnpackedArchive]:
        """The DICOM files inside, unpacked to a private folder removed on exit."""
        async with self._local_copy() as folder:
            path = folder / "archive.zip"
            await self._download(key, path)
            entries = folder / "entries"
            await asyncio.to_thread(os.mkdir, entries, 0o700)
            yield await asyncio.to_thread(_unpack, path, entries, self.limits)
