"""POSIX access ACLs read and written through the kernel's xattr, without the
`setfacl` tool (not installed on slim images).

Used to let one system account (the embedded PostgreSQL's) traverse a folder it
could not, without opening that folder to everyone (`chmod o+x`).

The xattr `system.posix_acl_access` holds a little-endian u32 version (2), then
entries of (tag u16, perm u16, id u32), sorted by tag then id; a MASK entry is
required once named USER/GROUP entries exist (see acl(5) and the kernel's
include/uapi/linux/posix_acl_xattr.h)."""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path

import msgspec

XATTR = "system.posix_acl_access"
VERSION = 2

USER_OBJ = 0x01
USER = 0x02
GROUP_OBJ = 0x04
GROUP = 0x08
MASK = 0x10
OTHER = 0x20

READ = 4
WRITE = 2
EXECUTE = 1

UNDEFINED_ID = 0xFFFFFFFF

_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_TAGS = {USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER}


class AclError(Exception):
    """An ACL could not be read, understood or written."""


class AclUnsupported(AclError):
    """The filesystem (or its mount options) refuses POSIX ACLs."""


class AclEntry(msgspec.Struct, frozen=True, order=True):
    tag: int
    perm: int
    id: int = UNDEFINED_ID


def decode(blob: bytes) -> list[AclEntry]:
    if len(blob) < _HEADER.size or (len(blob) - _HEADER.size) % _ENTRY.size:
        raise AclError(f"malformed ACL xattr of {len(blob)} bytes")
    (version,) = _HEADER.unpack_from(blob, 0)
    if version != VERSION:
        raise AclError(f"unknown ACL xattr version {version}")
    entries = []
    for offset in range(_HEADER.size, len(blob), _ENTRY.size):
        tag, perm, ident = _ENTRY.unpack_from(blob, offset)
        if tag not in _TAGS:
            raise AclError(f"unknown ACL entry tag {tag:#x}")
        entries.append(AclEntry(tag, perm & 0o7, ident))
    return entries


def encode(entries: Iterable[AclEntry]) -> bytes:
    ordered = sorted(entries, key=lambda entry: (entry.tag, entry.id))
    for required in (USER_OBJ, GROUP_OBJ, OTHER):
        if sum(1 for entry in ordered if entry.tag == required) != 1:
            raise AclError(f"an ACL needs exactly one entry of tag {required:#x}")
    named = any(entry.tag in (USER, GROUP) for entry in ordered)
    if named and not any(entry.tag == MASK for entry in ordered):
        raise AclError("an ACL with named entries needs a MASK entry")
    parts = [_HEADER.pack(VERSION)]
    for entry in ordered:
        ident = entry.id if entry.tag in (USER, GROUP) else UNDEFINED_ID
        parts.append(_ENTRY.pack(entry.tag, entry.perm & 0o7, ident))
    return b"".join(parts)


def from_mode(mode: int) -> list[AclEntry]:
    """The minimal ACL that the permission bits alone express."""
    return [
        AclEntry(USER_OBJ, (mode >> 6) & 0o7),
        AclEntry(GROUP_OBJ, (mode >> 3) & 0o7),
        AclEntry(OTHER, mode & 0o7),
    ]


def read(path: Path) -> list[AclEntry]:
    """The access ACL of `path`: its xattr, or the one its mode bits express."""
    try:
        return decode(os.getxattr(path, XATTR))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP, errno.ENOTSUP):
            return from_mode(os.stat(path).st_mode)
        raise


def write(path: Path, entries: Iterable[AclEntry]) -> None:
    try:
        os.setxattr(path, XATTR, encode(entries))
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            raise AclUnsupported(
                f"the filesystem holding {path} does not support POSIX ACLs"
            ) from exc
        raise AclError(f"could not write the ACL of {path}: {exc}") from exc


def permits(
    entries: list[AclEntry], *, owner: int, group: int, uid: int, gids: Iterable[int], want: int
) -> bool:
    """The kernel's access check (acl(5), "access check algorithm") for a caller
    without capabilities: does `uid` (member of `gids`) get every bit of `want`?"""
    by_tag: dict[int, list[AclEntry]] = {}
    for entry in entries:
        by_tag.setdefault(entry.tag, []).append(entry)
    mask = by_tag[MASK][0].perm if MASK in by_tag else 0o7
    if uid == owner:
        return by_tag[USER_OBJ][0].perm & want == want
    for entry in by_tag.get(USER, []):
        if entry.id == uid:
            return entry.perm & mask & want == want
    member_of = set(gids)
    group_entries = [entry for entry in by_tag[GROUP_OBJ] if group in member_of] + [
        entry for entry in by_tag.get(GROUP, []) if entry.id in member_of
    ]
    if group_entries:
        return any(entry.perm & mask & want == want for entry in group_entries)
    return by_tag[OTHER][0].perm & want == want


def can_access(path: Path, *, uid: int, gids: Iterable[int], want: int) -> bool:
    info = os.stat(path)
    return permits(read(path), owner=info.st_uid, group=info.st_gid, uid=uid, gids=gids, want=want)


def grant_user(path: Path, *, uid: int, gids: Iterable[int], want: int) -> bool:
    """Give `uid` the `want` bits on `path` through a named USER entry (merged
    with any ACL already there), touching nothing for anyone else. Returns
    whether anything changed. The mask grows by exactly `want`, so other named
    entries keep what they had unless `want` was masked from them before."""
    gids = list(gids)
    info = os.stat(path)
    entries = read(path)
    if permits(entries, owner=info.st_uid, group=info.st_gid, uid=uid, gids=gids, want=want):
        return False
    if uid == info.st_uid:
        # The owner is judged by the owner bits only; a named entry would be ignored.
        os.chmod(path, stat.S_IMODE(info.st_mode) | (want << 6))
        return True
    updated: list[AclEntry] = []
    named = False
    for entry in entries:
        if entry.tag == USER and entry.id == uid:
            entry = AclEntry(USER, entry.perm | want, uid)
            named = True
        updated.append(entry)
    if not named:
        updated.append(AclEntry(USER, want, uid))
    masks = [entry for entry in updated if entry.tag == MASK]
    if masks:
        updated = [
            AclEntry(MASK, entry.perm | want) if entry.tag == MASK else entry for entry in updated
        ]
    else:
        # A new mask must not narrow the owning group (nor any named group).
        group_class = 0
        for entry in updated:
            if entry.tag in (GROUP_OBJ, GROUP, USER):
                group_class |= entry.perm
        updated.append(AclEntry(MASK, group_class | want))
    write(path, updated)
    if not can_access(path, uid=uid, gids=gids, want=want):
        raise AclError(f"the ACL written on {path} still does not grant uid {uid} access")
    return True
