"""A CD as a zip: what phr accepts and what it refuses before keeping anything.

Refused outright (422, the archive deleted, nothing of it kept): a name that
climbs out (`../`) or starts at a root (`/x`, `C:\\x`), a link, an archive inside
the archive, more entries than allowed, more bytes when expanded than allowed,
or an entry that expands more than `max_ratio` times its compressed size (a zip
bomb). The listing's declared sizes are checked first; the unpacker checks the
real sizes again as it inflates, since a hostile zip can lie in its directory."""

from __future__ import annotations

import re
import stat

import msgspec

from domain.errors import FieldProblem, InvalidInput

# First bytes of archive and compression formats that have no place on a CD.
_NESTED_MAGIC = (
    b"PK\x03\x04",  # zip
    b"PK\x05\x06",  # empty zip
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"7z\xbc\xaf\x27\x1c",  # 7-zip
    b"Rar!\x1a\x07",  # rar
    b"\x28\xb5\x2f\xfd",  # zstd
)
_NESTED_NAMES = re.compile(r"\.(zip|gz|tgz|tar|bz2|xz|7z|rar|zst|jar|iso)$", re.IGNORECASE)
# Entries that are not files: directories, and names a CD never holds.
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


class HostileArchive(InvalidInput):
    """Refused before anything from it is kept; `detail` names the problem."""

    kind = "hostile-archive"
    title = "The archive is refused"


class ArchiveLimits(msgspec.Struct, frozen=True):
    max_entries: int = 20_000
    max_expanded_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: int = 200
    # Below this an entry's ratio is not judged: tiny files compress wildly.
    ratio_floor_bytes: int = 1024 * 1024


class ArchiveEntry(msgspec.Struct, frozen=True):
    name: str
    compressed_size: int
    size: int
    mode: int  # unix mode from the entry's external attributes (0 if none)
    is_dir: bool


def _refuse(detail: str, name: str | None = None) -> HostileArchive:
    return HostileArchive(
        detail, errors=[FieldProblem(f"archive/{name[:200]}" if name else "archive", detail)]
    )


def check_name(name: str) -> None:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _WINDOWS_DRIVE.match(normalised):
        raise _refuse("An entry has an absolute path.", name)
    if any(part == ".." for part in normalised.split("/")):
        raise _refuse("An entry's name climbs out of the archive (../).", name)
    if "\x00" in name:
        raise _refuse("An entry's name holds a NUL character.", name)


def check_listing(entries: list[ArchiveEntry], limits: ArchiveLimits) -> None:
    """HostileArchive naming the first problem in the archive's directory."""
    if len(entries) > limits.max_entries:
        raise _refuse(f"The archive has more than {limits.max_entries} entries.")
    total = 0
    for entry in entries:
        check_name(entry.name)
        if stat.S_ISLNK(entry.mode):
            raise _refuse("An entry is a symbolic link.", entry.name)
        if entry.is_dir:
            continue
        if _NESTED_NAMES.search(entry.name):
            raise _refuse("The archive holds another archive.", entry.name)
        check_ratio(entry.name, entry.size, entry.compressed_size, limits)
        total += entry.size
        if total > limits.max_expanded_bytes:
            raise _refuse(f"The archive expands to more than {limits.max_expanded_bytes} bytes.")


def check_ratio(name: str, size: int, compressed_size: int, limits: ArchiveLimits) -> None:
    if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(compressed_size, 1):
        raise _refuse(
            f"An entry expands more than {limits.max_ratio} times its compressed size.", name
        )


def check_content(name: str, prefix: bytes) -> None:
    """An entry's first bytes: archives inside the archive are refused by content
    too, whatever their name says."""
    if prefix.startswith(_NESTED_MAGIC):
        raise _refuse("The archive holds another archive.", name)
