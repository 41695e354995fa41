"""Create, change and delete projects together with their databases."""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction

from registry.databases import (
    database_name_build,
    project_database_create,
    project_database_drop,
    project_database_exists,
    project_database_migrate,
    project_database_register,
)
from registry.exceptions import (
    InvalidProjectName,
    ProjectAlreadyExists,
    ProjectDatabaseExists,
)
from registry.models import (
    DEFAULT_DATABASE_NAME,
    DEFAULT_PROJECT_ID,
    DEFAULT_PROJECT_NAME,
    Project,
)
from registry.selectors import project_find

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
        uuid.UUID(cleaned)
    except ValueError:
        return cleaned
    raise InvalidProjectName(
        f"{cleaned!r} looks like a project id; a name must not be a UUID, or lookups "
        "by id and by name would be ambiguous."
    )


def project_create(
    *,
    name: str,
    description: str = "",
    metadata: dict | None = None,
) -> Project:
    """Create a project and provision its database (pgvector, migrated).

    The database is created first and the registry row last, so a failure at
    any step leaves no row pointing at a missing or half-made database.
    """
    name = project_name_clean(name=name)
    if project_find(reference=name) is not None:
        raise ProjectAlreadyExists(name)
    project_id = uuid.uuid4()
    database_name = database_name_build(name=name, project_id=project_id)
    project_database_create(database_name=database_name)
    try:
        with transaction.atomic(using="default"):
            return Project.objects.using("default").create(
                id=project_id,
                name=name,
                description=description or "",
                database_name=database_name,
                metadata=metadata or {},
            )
    except IntegrityError as exc:
        # Another process took the name between the check and the insert.
        project_database_drop(database_name=database_name)
        raise ProjectAlreadyExists(name) from exc


def project_update(
    *,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    metadata: dict | None = None,
) -> Project:
    """Rename or re-describe a project; its database keeps its name."""
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
        project.save(using="default")
    except IntegrityError as exc:
        raise ProjectAlreadyExists(project.name) from exc
    return project


def project_delete(*, project: Project) -> None:
    """Delete a project: drop its database, then its registry row."""
    project_database_drop(database_name=project.database_name)
    Project.objects.using("default").filter(pk=project.pk).delete()


def project_default_ensure() -> Project:
    """Return the `default` project, creating it and its database when missing.

    Idempotent; a database left behind by an earlier registry is adopted
    (migrated forward) rather than refused, because its name is fixed.
    """
    project = Project.objects.using("default").filter(id=DEFAULT_PROJECT_ID).first()
    if project is not None:
        return project
    if project_database_exists(database_name=DEFAULT_DATABASE_NAME):
        project_database_migrate(database_name=DEFAULT_DATABASE_NAME)
    else:
        try:
            project_database_create(database_name=DEFAULT_DATABASE_NAME)
        except ProjectDatabaseExists:
            pass  # another process created it a moment ago
    project, _ = Project.objects.using("default").get_or_create(
        id=DEFAULT_PROJECT_ID,
        defaults={
            "name": DEFAULT_PROJECT_NAME,
            "description": "Default project, used when no other project is resolved.",
            "database_name": DEFAULT_DATABASE_NAME,
        },
    )
    return project


def project_alias(*, project: Project) -> str:
    """Return the registered connection alias of a project's database."""
    return project_database_register(database_name=project.database_name)
