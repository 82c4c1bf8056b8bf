from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from infra import posix_acl
from infra.posix_acl import (
    EXECUTE,
    GROUP,
    GROUP_OBJ,
    MASK,
    OTHER,
    READ,
    USER,
    USER_OBJ,
    WRITE,
    AclEntry,
    AclError,
)

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

# What the kernel returned for `u::rwx,u:65534:--x,g::---,m::--x,o::---`.
KERNEL_BYTES = bytes.fromhex(
    "0200000001000700ffffffff02000100feff000004000000ffffffff10000100ffffffff20000000ffffffff"
)


def test_encode_matches_the_kernel_layout_in_sorted_order():
    entries = [
        AclEntry(OTHER, 0),
        AclEntry(MASK, EXECUTE),
        AclEntry(USER, EXECUTE, NOBODY),
        AclEntry(GROUP_OBJ, 0),
        AclEntry(USER_OBJ, READ | WRITE | EXECUTE),
    ]
    assert posix_acl.encode(entries) == KERNEL_BYTES
    assert posix_acl.decode(KERNEL_BYTES) == sorted(entries, key=lambda e: (e.tag, e.id))


def test_encode_refuses_named_entries_without_a_mask():
    with pytest.raises(AclError, match="MASK"):
        posix_acl.encode([*posix_acl.from_mode(0o700), AclEntry(USER, EXECUTE, NOBODY)])


def test_decode_refuses_garbage():
    with pytest.raises(AclError):
        posix_acl.decode(b"\x02\x00\x00\x00\x01")
    with pytest.raises(AclError, match="version"):
        posix_acl.decode(b"\x01\x00\x00\x00")


@pytest.mark.parametrize(
    ("entries", "uid", "gids", "want", "expected"),
    [
        # owner bits decide for the owner, whatever others get
        (posix_acl.from_mode(0o077), 10, [], EXECUTE, False),
        (posix_acl.from_mode(0o100), 10, [], EXECUTE, True),
        # owning group
        (posix_acl.from_mode(0o710), 11, [20], EXECUTE, True),
        # a group match that lacks the bit denies even if "other" has it
        (posix_acl.from_mode(0o701), 11, [20], EXECUTE, False),
        (posix_acl.from_mode(0o701), 11, [99], EXECUTE, True),
        # named user, limited by the mask
        (
            [*posix_acl.from_mode(0o700), AclEntry(USER, 5, 11), AclEntry(MASK, EXECUTE)],
            11,
            [],
            EXECUTE,
            True,
        ),
        (
            [*posix_acl.from_mode(0o700), AclEntry(USER, 5, 11), AclEntry(MASK, READ)],
            11,
            [],
            EXECUTE,
            False,
        ),
        # a named group entry
        (
            [*posix_acl.from_mode(0o700), AclEntry(GROUP, 1, 30), AclEntry(MASK, 7)],
            11,
            [30],
            EXECUTE,
            True,
        ),
    ],
)
def test_permits_follows_the_acl_access_algorithm(entries, uid, gids, want, expected):
    assert posix_acl.permits(entries, owner=10, group=20, uid=uid, gids=gids, want=want) is expected


@pytest.fixture
def top_folder():
    """A folder right under /tmp (which everyone may traverse), so that only the
    folder under test stands between `nobody` and its inner folder."""
    folder = Path(tempfile.mkdtemp(prefix="phr-acl-test-"))
    os.chmod(folder, 0o755)  # noqa: S103 - an empty test folder of our own
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _nobody_can_enter(folder: Path) -> bool:
    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            str(NOBODY),
            "--regid",
            str(NOBODY),
            "--clear-groups",
            "ls",
            str(folder / "inner"),
        ],
        capture_output=True,
    )
    return result.returncode == 0


@as_root
def test_grant_user_gives_one_user_traverse_and_nobody_else_anything(top_folder):
    folder = top_folder / "private"
    folder.mkdir(mode=0o700)
    (folder / "inner").mkdir(mode=0o755)
    before = folder.stat().st_mode
    assert not _nobody_can_enter(folder)

    assert posix_acl.grant_user(folder, uid=NOBODY, gids=[NOBODY], want=EXECUTE) is True

    assert _nobody_can_enter(folder)
    after = folder.stat().st_mode
    assert after & 0o007 == before & 0o007  # "other" gained nothing
    acl = posix_acl.read(folder)
    assert AclEntry(GROUP_OBJ, 0) in acl  # the owning group gained nothing
    assert AclEntry(USER, EXECUTE, NOBODY) in acl
    # A second grant is a no-op.
    assert posix_acl.grant_user(folder, uid=NOBODY, gids=[NOBODY], want=EXECUTE) is False


@as_root
def test_grant_user_merges_with_an_existing_acl(top_folder):
    folder = top_folder / "shared"
    folder.mkdir(mode=0o700)
    (folder / "inner").mkdir()
    existing = [
        *posix_acl.from_mode(0o700),
        AclEntry(GROUP, READ | EXECUTE, 4242),
        AclEntry(MASK, READ | EXECUTE),
    ]
    posix_acl.write(folder, existing)

    assert posix_acl.grant_user(folder, uid=NOBODY, gids=[NOBODY], want=EXECUTE) is True

    acl = posix_acl.read(folder)
    assert AclEntry(GROUP, READ | EXECUTE, 4242) in acl
    assert AclEntry(USER, EXECUTE, NOBODY) in acl
    assert AclEntry(MASK, READ | EXECUTE) in acl
    assert _nobody_can_enter(folder)
