"""Move a project's database to another PostgreSQL server, keeping its name.

Until the registry row changes, any step may fail without consequence: the
half-made copy is dropped and the project keeps being served from where it
was. Searches keep being served from the old copy while the new one fills.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

from operations.guards import project_jobs_refuse
from operations.pgtools import (
    DatabaseEndpoint,
    Snapshot,
    counts_compare,
    database_analyze,
    database_copy,
    database_drop_quietly,
    snapshot_export,
    table_counts,
)
from registry.databases import (
    database_server_check,
    project_database_create,
    project_database_exists,
    project_database_register,
)
from registry.exceptions import (
    ProjectOperationFailed,
    ProjectOperationRefused,
    RegistryError,
)
from registry.models import Project
from registry.selectors import project_get
from registry.services import project_placement_switch

logger = logging.getLogger("codebase_mcp.operations")


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
    project_jobs_refuse(project=current, action="move it")
    # The copy keeps the project's role (same name and secret on the target).
    login = current.database_login
    source = DatabaseEndpoint(
        database_name=database_name, server=source_server, login=login
    )
    target = DatabaseEndpoint(
        database_name=database_name, server=to_server, login=login
    )
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
        with snapshot_export(endpoint=source, lock_repositories=True) as snapshot:
            project_database_create(
                database_name=database_name,
                server=to_server,
                migrate=False,
                login=login,
            )
            created = True
            database_copy(snapshot=snapshot, source=source, target=target)
            with target.connect() as connection:
                copied = table_counts(connection)
            difference = counts_compare(snapshot.tables, copied)
            if difference:
                raise ProjectOperationFailed(
                    f"the copy's row counts differ ({difference})"
                )
            database_analyze(target)
            _source_unchanged(source=source, snapshot=snapshot)
            project_placement_switch(
                project=current,
                expected={"server": source_server, "database_name": database_name},
                changes={"server": to_server},
            )
    except ProjectOperationRefused:
        if created:
            database_drop_quietly(database_name=database_name, server=to_server)
        raise
    except Exception as exc:
        if created:
            database_drop_quietly(database_name=database_name, server=to_server)
        logger.warning("move of %s failed", current.name, exc_info=True)
        raise ProjectOperationFailed(f"{failure}: {exc}") from exc
    project.server = to_server
    # This process follows at once; others follow when they next read the row.
    project_database_register(
        database_name=database_name, server=to_server, login=login
    )
    warning = database_drop_quietly(database_name=database_name, server=source_server)
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


def _source_unchanged(*, source: DatabaseEndpoint, snapshot: Snapshot) -> None:
    """Raise when indexing wrote to the source after the snapshot was taken."""
    with source.connect() as connection:
        now = table_counts(connection)
    keep = [name for name in _CONTENT_TABLES if name in snapshot.tables]
    difference = counts_compare(
        {name: snapshot.tables[name] for name in keep},
        {name: now.get(name, 0) for name in keep},
    )
    if difference:
        raise ProjectOperationFailed(
            f"the project changed while it was copied ({difference}); run the "
            "operation again when no repository is being indexed"
        )
