"""Back a project up into one tar file, and restore one into a new database.

A backup is `manifest.json` (project row, embedding model, schema version,
row counts, checksum) followed by `database.dump` (pg_dump custom format of a
consistent snapshot, taken while the project stays in use). A restore
provisions a new database, restores into it in one transaction, checks the
row counts and brings an older schema up to date before the registry points
at it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.db import IntegrityError, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from indexing.embedders import embedder_for_space
from operations.guards import project_jobs_refuse
from operations.pgtools import (
    DatabaseEndpoint,
    client_errors,
    client_run,
    counts_compare,
    database_analyze,
    database_drop_quietly,
    endpoint_major_version,
    pg_dump_args,
    pg_restore_args,
    snapshot_export,
    table_counts,
)
from registry.databases import (
    database_name_build,
    project_database_create,
    project_database_migrate,
    project_login_new,
)
from registry.exceptions import (
    BackupInvalid,
    ProjectAlreadyExists,
    ProjectOperationFailed,
    ProjectOperationRefused,
)
from registry.models import Project
from registry.selectors import project_find, project_get
from registry.services import (
    project_name_clean,
    project_placement_switch,
    project_server_choose,
)

logger = logging.getLogger("codebase_mcp.operations")

BACKUP_FORMAT = "codebase-mcp-project-backup"
BACKUP_VERSION = 1
MANIFEST_MEMBER = "manifest.json"
DUMP_MEMBER = "database.dump"
SCHEMA_APP = "indexing"
# Largest manifest read from an uploaded file; real ones are a few kB.
_MAX_MANIFEST_BYTES = 1_000_000
_COPY_CHUNK = 1024 * 1024


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
    source = DatabaseEndpoint(
        database_name=current.database_name,
        server=current.server,
        login=current.database_login,
    )
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="cbmcp-backup-") as work:
        dump_path = Path(work) / DUMP_MEMBER
        try:
            with snapshot_export(endpoint=source) as snapshot:
                migrations = _schema_migrations(snapshot.connection)
                space = _embedding_space(snapshot.connection)
                server_version = snapshot.connection.info.parameter_status(
                    "server_version"
                )
                args, env = pg_dump_args(snapshot=snapshot, source=source)
                dump = client_run([*args, f"--file={dump_path}"], env=env)
                code = dump.wait()
                errors = client_errors(dump)
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
    embedder = embedder_for_space(model_id=space.get("model_id"))
    if space.get("model_id") != embedder.model_id:
        raise ProjectOperationRefused(
            f"The backup holds vectors of the embedding model {space.get('model_id')} "
            f"({space.get('dimension')}-d), but this installation embeds with "
            f"{embedder.model_id} ({embedder.dimension}-d): semantic search could not "
            "use them. Restore it where EMBEDDING_BACKEND / OLLAMA_EMBEDDING_MODEL "
            "/ MINILM_MAX_TOKENS select that model (then, to switch models, "
            "re-index with `manage.py index PATH --reembed`)."
        )


def _dump_restore(
    *, archive: Path, manifest: dict, target: DatabaseEndpoint, label: str | None = None
) -> None:
    """Stream the archive's dump into pg_restore; check it against the manifest."""
    shown = label or str(archive)
    args, env = pg_restore_args(
        target=target, server_major=endpoint_major_version(target)
    )
    digest = hashlib.sha256()
    with tarfile.open(archive, "r:") as tar:
        try:
            member = tar.getmember(DUMP_MEMBER)
        except KeyError:
            raise BackupInvalid(f"{shown} holds no {DUMP_MEMBER}.") from None
        source = tar.extractfile(member)
        if source is None:
            raise BackupInvalid(f"{DUMP_MEMBER} of {shown} is not a file.")
        restore = client_run(args, env=env, stdin=subprocess.PIPE)
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
        errors = client_errors(restore)
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
        project_jobs_refuse(project=existing, action="restore over it")
        server = server or existing.server
    server = project_server_choose(server=server)
    project_id = existing.id if existing is not None else _free_project_id(backed_up)
    # A replacement gets a fresh database name: the old one still exists.
    database_name = database_name_build(
        name=name, project_id=uuid.uuid4() if existing is not None else project_id
    )
    # The new database gets a role of its own, whatever the backup came from.
    login = project_login_new(database_name=database_name)
    target = DatabaseEndpoint(database_name=database_name, server=server, login=login)
    created = False
    try:
        project_database_create(
            database_name=database_name, server=server, migrate=False, login=login
        )
        created = True
        _dump_restore(archive=archive, manifest=manifest, target=target, label=label)
        with target.connect() as connection:
            restored = table_counts(connection)
        difference = counts_compare(manifest["tables"], restored)
        if difference:
            raise ProjectOperationFailed(
                f"the restored row counts differ ({difference})"
            )
        database_analyze(target)
        # A backup of an older schema is brought up to date like any project.
        project_database_migrate(
            database_name=database_name, server=server, login=login
        )
        if existing is not None:
            project_placement_switch(
                project=existing,
                expected={
                    "server": existing.server,
                    "database_name": existing.database_name,
                },
                changes={
                    "server": server,
                    "database_name": database_name,
                    "database_role": login.role,
                    "database_secret": login.secret,
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
                    database_role=login.role,
                    database_secret=login.secret,
                    server=server,
                )
    except IntegrityError as exc:
        database_drop_quietly(database_name=database_name, server=server)
        raise ProjectAlreadyExists(name) from exc
    except (BackupInvalid, ProjectOperationRefused):
        if created:
            database_drop_quietly(database_name=database_name, server=server)
        raise
    except Exception as exc:
        if created:
            database_drop_quietly(database_name=database_name, server=server)
        logger.warning("restore of %s failed", archive, exc_info=True)
        raise ProjectOperationFailed(
            f"Restoring {label or archive} as project {name!r} failed and was rolled back"
            f"{'; the existing project is unchanged' if existing else ''}: {exc}"
        ) from exc
    warnings: list[str] = []
    if existing is not None:
        warning = database_drop_quietly(
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
