"""Create, change and delete projects together with their databases."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.utils import timezone

from registry.databases import (
    DEFAULT_SERVER,
    database_name_build,
    database_server_check,
    database_server_names,
    project_connection,
    project_database_create,
    project_database_drop,
    project_database_exists,
    project_database_migrate,
    project_database_register,
    project_login_new,
    project_role_ensure,
)
from registry.exceptions import (
    InvalidProjectField,
    InvalidProjectName,
    ProjectAlreadyExists,
    ProjectDatabaseExists,
    ProjectDatabaseUnavailable,
    ProjectOperationFailed,
    RegistryError,
)
from registry.models import (
    DEFAULT_DATABASE_NAME,
    DEFAULT_PROJECT_ID,
    DEFAULT_PROJECT_NAME,
    Project,
)
from registry.routers import PROJECT_APP
from registry.selectors import project_find, project_list

logger = logging.getLogger("codebase_mcp.registry")

MAX_NAME_LENGTH = 255


def project_name_clean(*, name: str) -> str:
    """Return a project name stripped of surrounding blanks, or raise if unusable."""
    if not isinstance(name, str):
        raise InvalidProjectName("A project name must be text.")
    cleaned = name.strip()
    if not cleaned:
        raise InvalidProjectName("A project name must not be empty.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidProjectName(
            f"A project name may have at most {MAX_NAME_LENGTH} characters "
            f"(this one has {len(cleaned)}); choose a shorter name."
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in cleaned):
        raise InvalidProjectName(
            "A project name must not contain control characters (newlines, tabs, NUL)."
        )
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        # JSON can carry lone surrogates ("\ud800"); PostgreSQL cannot store them.
        raise InvalidProjectName(
            "A project name must be valid Unicode text; this one holds lone "
            "surrogates (a broken \\u escape?)."
        ) from None
    try:
        uuid.UUID(cleaned)
    except ValueError:
        return cleaned
    raise InvalidProjectName(
        f"{cleaned!r} looks like a project id; a name must not be a UUID, or lookups "
        "by id and by name would be ambiguous."
    )


def _fields_check(*, description: str | None, metadata: dict | None) -> None:
    """Refuse a description or metadata that PostgreSQL could not store.

    Checked before a database is created: a failed insert afterwards would
    cost the provisioning work and an error nobody can act on.
    """
    if description is not None and not isinstance(description, str):
        raise InvalidProjectField("A project description must be text.")
    try:
        if description:
            description.encode("utf-8")
        if metadata is not None:
            json.dumps(metadata, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidProjectField(
            "The project description or metadata holds lone surrogates (a broken "
            "\\u escape?); send valid Unicode text."
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidProjectField(f"Project metadata must be JSON: {exc}.") from None
    if "\x00" in (description or ""):
        raise InvalidProjectField("A project description must not contain NUL bytes.")


def project_server_choose(*, server: str | None = None) -> str:
    """Return the server for a new project: `server` if given, else the emptiest.

    Ties go to the server named first (`default`, then PROJECT_DATABASE_SERVERS
    in order). Projects of servers no longer configured are not counted.
    """
    if server is not None:
        return database_server_check(server=server)
    names = database_server_names()
    if len(names) == 1:
        return names[0]
    counts = dict(
        Project.objects.using("default")
        .values("server")
        .annotate(n=Count("id"))
        .values_list("server", "n")
    )
    return min(names, key=lambda name: (counts.get(name, 0), names.index(name)))


def project_create(
    *,
    name: str,
    description: str = "",
    metadata: dict | None = None,
    server: str | None = None,
) -> Project:
    """Create a project and provision its database (pgvector, migrated).

    The database goes to `server`, or to the server holding the fewest
    projects. It is created first and the registry row last, so a failure at
    any step leaves no row pointing at a missing or half-made database.
    """
    name = project_name_clean(name=name)
    _fields_check(description=description, metadata=metadata)
    server = project_server_choose(server=server)
    if project_find(reference=name) is not None:
        raise ProjectAlreadyExists(name)
    project_id = uuid.uuid4()
    database_name = database_name_build(name=name, project_id=project_id)
    login = project_login_new(database_name=database_name)
    project_database_create(database_name=database_name, server=server, login=login)
    try:
        with transaction.atomic(using="default"):
            return Project.objects.using("default").create(
                id=project_id,
                name=name,
                description=description or "",
                database_name=database_name,
                database_role=login.role,
                database_secret=login.secret,
                server=server,
                metadata=metadata or {},
            )
    except IntegrityError as exc:
        # Another process took the name between the check and the insert.
        project_database_drop(database_name=database_name, server=server)
        raise ProjectAlreadyExists(name) from exc


def project_update(
    *,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    metadata: dict | None = None,
) -> Project:
    """Rename or re-describe a project; its database keeps its name."""
    _fields_check(description=description, metadata=metadata)
    if name is not None:
        name = project_name_clean(name=name)
        other = project_find(reference=name)
        if other is not None and other.pk != project.pk:
            raise ProjectAlreadyExists(name)
        project.name = name
    if description is not None:
        project.description = description
    if metadata is not None:
        project.metadata = metadata
    try:
        # Only the fields changed here: an instance read before a move or a
        # restore finished must not write its stale server or database back.
        project.save(
            using="default",
            update_fields=["name", "description", "metadata", "updated_at"],
        )
    except IntegrityError as exc:
        raise ProjectAlreadyExists(project.name) from exc
    return project


def project_delete(*, project: Project) -> None:
    """Delete a project: drop its database, then its registry row."""
    project_database_drop(database_name=project.database_name, server=project.server)
    Project.objects.using("default").filter(pk=project.pk).delete()


def project_placement_switch(
    *, project: Project, expected: dict, changes: dict
) -> None:
    """Change where a project's row points, in one transaction, if nobody else did.

    `expected` holds the fields as the caller last read them (server,
    database_name); a row that differs raises ProjectOperationFailed and
    changes nothing, so a move or restore never overwrites a concurrent one.
    """
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


def project_default_ensure() -> Project:
    """Return the `default` project, creating it and its database when missing.

    Idempotent; a database left behind by an earlier registry is adopted
    (migrated forward) rather than refused, because its name is fixed.
    """
    project = Project.objects.using("default").filter(id=DEFAULT_PROJECT_ID).first()
    if project is not None:
        return project
    login = project_login_new(database_name=DEFAULT_DATABASE_NAME)
    if project_database_exists(database_name=DEFAULT_DATABASE_NAME):
        project_role_ensure(database_name=DEFAULT_DATABASE_NAME, login=login)
        project_database_migrate(database_name=DEFAULT_DATABASE_NAME, login=login)
    else:
        try:
            project_database_create(database_name=DEFAULT_DATABASE_NAME, login=login)
        except ProjectDatabaseExists:
            # Another process created it a moment ago; its row follows.
            project_role_ensure(database_name=DEFAULT_DATABASE_NAME, login=login)
    project, created = Project.objects.using("default").get_or_create(
        id=DEFAULT_PROJECT_ID,
        defaults={
            "name": DEFAULT_PROJECT_NAME,
            "description": "Default project, used when no other project is resolved.",
            "database_name": DEFAULT_DATABASE_NAME,
            "database_role": login.role,
            "database_secret": login.secret,
            "server": DEFAULT_SERVER,
        },
    )
    if not created and project.database_login not in (None, login):
        # The process that stored its row won: its secret is the role's.
        project_role_ensure(
            database_name=DEFAULT_DATABASE_NAME, login=project.database_login
        )
    return project


def project_alias(*, project: Project) -> str:
    """Return the registered connection alias of a project's database.

    The alias follows the project's server as the registry row says, so a
    process that reads the row after a move reaches the new place.
    """
    return project_database_register(
        database_name=project.database_name,
        server=project.server,
        login=project.database_login,
    )


@dataclass
class ProjectMigration:
    """What migrating one project's database did, or why it failed."""

    project_id: str
    name: str
    database_name: str
    server: str
    applied: list[str] = field(default_factory=list)
    # Whether this run gave the project its own login role.
    role_created: bool = False
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def project_role_give(*, project: Project) -> Project:
    """Give a project made before roles existed its own login role.

    The role is created (or its secret reset) and handed the database's
    objects first; the registry row records it last, so a failure in between
    leaves the project working as before, on the admin connection.
    """
    login = project_login_new(database_name=project.database_name)
    project_role_ensure(
        database_name=project.database_name, login=login, server=project.server
    )
    Project.objects.using("default").filter(pk=project.pk).update(
        database_role=login.role, database_secret=login.secret
    )
    project.database_role, project.database_secret = login.role, login.secret
    return project


def _pending_project_migrations(*, connection: BaseDatabaseWrapper) -> list[str]:
    """Return the per-project migrations a project database lacks, in order."""
    executor = MigrationExecutor(connection)
    targets = [
        key for key in executor.loader.graph.leaf_nodes() if key[0] == PROJECT_APP
    ]
    return [
        f"{migration.app_label}.{migration.name}"
        for migration, backwards in executor.migration_plan(targets)
        if not backwards and migration.app_label == PROJECT_APP
    ]


def project_databases_migrate(
    *, projects: Iterable[Project] | None = None
) -> list[ProjectMigration]:
    """Apply pending per-project migrations to every project's database.

    Projects (all of them, by name, unless `projects` is given) are migrated one
    at a time; one that fails (database missing, server down, a migration that
    errors) is recorded with its error and the rest still run. A project
    made before login roles existed is given its own first. Return one
    result per project, with the migrations it applied.
    """
    results = []
    for project in project_list() if projects is None else projects:
        result = ProjectMigration(
            project_id=str(project.id),
            name=project.name,
            database_name=project.database_name,
            server=project.server,
        )
        started = time.monotonic()
        try:
            # Asked first: a pool would wait POOL_TIMEOUT for a missing database.
            if not project_database_exists(
                database_name=project.database_name, server=project.server
            ):
                raise ProjectDatabaseUnavailable(
                    f"The database {project.database_name!r} of project "
                    f"{project.name!r} does not exist on server {project.server!r}; "
                    "restore it from a backup or delete the project."
                )
            if project.database_login is None:
                project_role_give(project=project)
                result.role_created = True
            connection = project_connection(
                database_name=project.database_name,
                server=project.server,
                login=project.database_login,
            )
            try:
                pending = _pending_project_migrations(connection=connection)
                if pending:
                    project_database_migrate(
                        database_name=project.database_name,
                        server=project.server,
                        login=project.database_login,
                    )
            finally:
                # One project at a time: give its pooled connection back at once.
                connection.close()
            result.applied = pending
        except RegistryError as exc:
            result.error = str(exc)
        except Exception as exc:  # one broken project must not stop the others
            logger.warning("migrating %s failed", project.database_name, exc_info=True)
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = round(time.monotonic() - started, 3)
        results.append(result)
    return results
