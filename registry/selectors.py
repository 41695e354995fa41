"""Read the project registry."""

from __future__ import annotations

import uuid

from registry.exceptions import ProjectNotFound
from registry.models import Project


def _as_uuid(reference: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(reference, uuid.UUID):
        return reference
    try:
        return uuid.UUID(str(reference).strip())
    except ValueError:
        return None


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def project_get(*, reference: str | uuid.UUID) -> Project:
    """Return the project with this UUID or name, or raise ProjectNotFound."""
    project_id = _as_uuid(reference)
    queryset = Project.objects.using("default")
    if project_id is not None:
        project = queryset.filter(id=project_id).first()
    elif _storable(str(reference)):
        project = queryset.filter(name=str(reference).strip()).first()
    else:
        # No stored name holds lone surrogates; asking PostgreSQL would fail.
        project = None
    if project is None:
        raise ProjectNotFound(str(reference))
    return project


def project_find(*, reference: str | uuid.UUID) -> Project | None:
    """Return the project with this UUID or name, or None."""
    try:
        return project_get(reference=reference)
    except ProjectNotFound:
        return None


def project_list() -> list[Project]:
    """Return every project, ordered by name."""
    return list(Project.objects.using("default").order_by("name"))
