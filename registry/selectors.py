"""Read the project registry."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from registry.exceptions import InvalidProjectList, ProjectNotFound, ProjectsNotFound
from registry.models import Project

# One query may span at most this many projects: each costs a connection and
# a thread, and a list longer than this is a mistake or an attack, not a need.
MAX_PROJECTS = 20
# Characters of a reference that is neither a UUID nor a project name.
_MAX_REFERENCE = 255


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


def projects_get(
    *,
    references: Iterable[object],
    readable: Callable[[Project], bool] | None = None,
) -> list[Project]:
    """Return the projects a list of UUIDs or names names, in the list's order.

    The one place a call that spans several projects turns names into
    registry rows: duplicates (by name or id) count once, more than
    MAX_PROJECTS distinct ones are refused, and every name must be a project
    that `readable` allows (an access check of the caller; None allows all).
    A project that exists but is not readable is reported exactly as one that
    does not exist, so the answer never tells which names exist.
    """
    if isinstance(references, (str, bytes)) or not isinstance(references, Iterable):
        raise InvalidProjectList(
            "projects must be a list of project names or ids, e.g. ['api', 'web']."
        )
    cleaned: list[str] = []
    for reference in references:
        if not isinstance(reference, (str, uuid.UUID)):
            raise InvalidProjectList(
                f"projects holds {type(reference).__name__} {reference!r}; each "
                "entry must be a project name or id (text)."
            )
        text = str(reference).strip()
        if not text:
            raise InvalidProjectList(
                "projects holds an empty name; remove it or name a project."
            )
        if text not in cleaned:
            cleaned.append(text)
            if len(cleaned) > MAX_PROJECTS:
                raise InvalidProjectList(
                    f"projects names more than {MAX_PROJECTS} distinct projects; one "
                    f"query spans at most {MAX_PROJECTS}. Split the call."
                )
    if not cleaned:
        raise InvalidProjectList(
            "projects is empty; name at least one project (list_projects shows them)."
        )
    found: list[Project] = []
    missing: list[str] = []
    for text in cleaned:
        project = (
            project_find(reference=text)
            if len(text) <= _MAX_REFERENCE and "\x00" not in text
            else None
        )
        if project is None or (readable is not None and not readable(project)):
            missing.append(text)
        elif all(project.pk != other.pk for other in found):
            found.append(project)
    if missing:
        raise ProjectsNotFound(missing)
    return found
