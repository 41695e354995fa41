"""Whether a caller's token covers what a call touches: one check for every interface.

A `Grant` is what one request may do: a permission (read < write < admin,
each including the ones before) over a set of projects, or over every
project. The REST API (config.auth), the Prometheus view and the MCP HTTP
transport build one from the bearer token; stdio runmcp and management
commands act as the local user (`LOCAL`, unrestricted).

- read: search, navigation, status, repositories, jobs, metrics, listing;
- write: index, refresh, change and delete a project; create one (a grant
  over every project only, since a new project is in no token's list yet);
- admin: move, back up and restore (restore: over every project).

A call outside the grant raises AccessDenied (HTTP 403, an MCP tool error)
that names the missing scope. For a grant limited to some projects, an
unknown project and an existing one it does not list get the same answer,
word for word, so a token cannot probe which names exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from indexing.exceptions import IndexJobNotFound
from indexing.jobs import index_job_get
from indexing.models import IndexJob
from registry.exceptions import AccessDenied, ProjectsNotFound
from registry.models import ApiToken, Project
from registry.selectors import project_find, project_get, projects_get

READ, WRITE, ADMIN = ApiToken.READ, ApiToken.WRITE, ApiToken.ADMIN
PERMISSIONS = ApiToken.PERMISSIONS
# References longer than this are cut in messages (a hostile 10 kB name).
_SHOWN = 80


@dataclass(frozen=True)
class Grant:
    """What one caller may do: a permission over some projects or all (None)."""

    holder: str
    permission: str
    project_ids: frozenset[uuid.UUID] | None = None

    @property
    def all_projects(self) -> bool:
        return self.project_ids is None


LOCAL = Grant(holder="local user", permission=ADMIN)


def _rank(permission: str) -> int:
    try:
        return PERMISSIONS.index(permission)
    except ValueError:
        raise ValueError(f"unknown permission {permission!r}") from None


def _shown(reference: object) -> str:
    text = str(reference)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def permission_includes(grant: Grant, *, permission: str) -> bool:
    """Return whether the grant's permission includes `permission` (on its projects)."""
    return _rank(grant.permission) >= _rank(permission)


def token_allows(
    grant: Grant, *, project: Project | None = None, permission: str
) -> bool:
    """Return whether `grant` may act with `permission` on `project`.

    `project=None` asks for the permission over every project (creating or
    restoring one), which only a grant over every project has.
    """
    if not permission_includes(grant, permission=permission):
        return False
    if grant.project_ids is None:
        return True
    return project is not None and project.pk in grant.project_ids


def access_require(grant: Grant, *, permission: str, target: str) -> None:
    """Raise AccessDenied unless `grant` has `permission` over every project."""
    if not token_allows(grant, project=None, permission=permission):
        raise AccessDenied(permission=permission, target=target, holder=grant.holder)


def project_for(
    grant: Grant, *, reference: str | uuid.UUID, permission: str
) -> Project:
    """Return the project `reference` names if `grant` may use it with `permission`.

    A grant over every project sees every project: an unknown name is
    ProjectNotFound (404) as before. A grant over some projects gets the
    same AccessDenied for a name it does not list and for one that does not
    exist.
    """
    if not permission_includes(grant, permission=permission):
        # Refused before any lookup: the answer says nothing about the name.
        project = None
    elif grant.project_ids is None:
        project = project_get(reference=reference)
    else:
        project = project_find(reference=reference)
    if project is None or not token_allows(
        grant, project=project, permission=permission
    ):
        raise AccessDenied(
            permission=permission,
            target=f"project {_shown(reference)}",
            holder=grant.holder,
        )
    return project


def projects_for(
    grant: Grant, *, references: Iterable[str | uuid.UUID], permission: str = READ
) -> list[Project]:
    """Return the projects named, each checked as project_for; refuse the call on the first not covered.

    Duplicates (by project) are kept once, in the order first named.
    """
    found: dict[uuid.UUID, Project] = {}
    for reference in references:
        project = project_for(grant, reference=reference, permission=permission)
        found.setdefault(project.pk, project)
    return list(found.values())


def projects_readable(
    grant: Grant, *, projects: Iterable[Project], permission: str = READ
) -> list[Project]:
    """Return the projects of `projects` that `grant` may use with `permission`, in order."""
    return [
        project
        for project in projects
        if token_allows(grant, project=project, permission=permission)
    ]


def project_names_readable(
    grant: Grant, *, names: Iterable[str], permission: str = READ
) -> list[str]:
    """Return the names (or ids) of `names` that resolve to projects `grant` may use.

    Unknown and uncovered names are left out alike; for callers that filter
    (a listing) rather than refuse (a call naming projects: projects_for).
    """
    kept = []
    for name in names:
        project = project_find(reference=name)
        if project is not None and token_allows(
            grant, project=project, permission=permission
        ):
            kept.append(name)
    return kept


def projects_named(
    grant: Grant, *, references: object, permission: str = READ
) -> list[Project]:
    """Return the projects a call over several names, each covered by `grant`.

    The list is checked as projects_get checks it (duplicates once, a cap,
    clear errors). A grant over every project gets ProjectsNotFound (404) for
    unknown names, as a one-project call does; a grant over some projects
    gets one AccessDenied for unknown and unlisted names alike.
    """
    try:
        return projects_get(
            references=references,
            readable=lambda project: token_allows(
                grant, project=project, permission=permission
            ),
        )
    except ProjectsNotFound as exc:
        if grant.all_projects and permission_includes(grant, permission=permission):
            raise
        shown = ", ".join(_shown(reference) for reference in exc.references[:5])
        more = f" and {len(exc.references) - 5} more" if len(exc.references) > 5 else ""
        raise AccessDenied(
            permission=permission,
            target=f"projects {shown}{more}",
            holder=grant.holder,
        ) from None


def job_for(grant: Grant, *, job_id: str) -> IndexJob:
    """Return the indexing job `job_id` if `grant` may read its project.

    A grant over some projects gets the same AccessDenied for a job of a
    project it does not list and for a job that does not exist.
    """
    try:
        job = index_job_get(job_id=job_id)
    except IndexJobNotFound:
        if grant.all_projects:
            raise
        job = None
    if job is None or not token_allows(grant, project=job.project, permission=READ):
        raise AccessDenied(
            permission=READ, target=f"job {_shown(job_id)}", holder=grant.holder
        )
    return job
