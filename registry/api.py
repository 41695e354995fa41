"""REST endpoints of the project registry: create, read, change and drop projects."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from indexing.schemas import ProjectDetailOut
from indexing.selectors import project_status
from registry.exceptions import RegistryError
from registry.models import Project
from registry.schemas import (
    ProjectIn,
    ProjectOut,
    ProjectPatchIn,
    Text,
    error_responses,
)
from registry.selectors import project_get, project_list
from registry.services import project_create, project_delete, project_update

router = Router(tags=["projects"])


class DeletionNotConfirmed(RegistryError):
    """A DELETE arrived without `?confirm=true`.

    Kept with the interface that asks for it: the command line asks for
    `--yes` instead, so the services know nothing of confirmation.
    """

    code = "confirmation_required"

    def __init__(self, project: Project) -> None:
        super().__init__(
            f"Deleting project {project.name!r} drops its database and everything "
            "indexed in it; repeat the request with ?confirm=true to go ahead."
        )


@router.get("/projects", response={200: list[ProjectOut], **error_responses()})
def projects_list(request: HttpRequest) -> list[Project]:
    """List every project, ordered by name."""
    return project_list()


@router.post(
    "/projects",
    response={201: ProjectOut, **error_responses(400, 409)},
)
def projects_create(request: HttpRequest, payload: ProjectIn) -> tuple[int, Project]:
    """Create a project and provision its database."""
    project = project_create(
        name=payload.name, description=payload.description, metadata=payload.metadata
    )
    return 201, project


def _detail(project: Project) -> dict:
    return {
        **ProjectOut.model_validate(project).model_dump(),
        "status": project_status(project=project),
    }


@router.get(
    "/projects/{id_or_name}",
    response={200: ProjectDetailOut, **error_responses(404)},
)
def projects_detail(request: HttpRequest, id_or_name: Text) -> dict:
    """Return a project with its repositories, counts and running jobs."""
    return _detail(project_get(reference=id_or_name))


@router.patch(
    "/projects/{id_or_name}",
    response={200: ProjectOut, **error_responses(400, 404, 409)},
)
def projects_update(
    request: HttpRequest, id_or_name: Text, payload: ProjectPatchIn
) -> Project:
    """Rename a project or change its description or metadata."""
    return project_update(
        project=project_get(reference=id_or_name),
        name=payload.name,
        description=payload.description,
        metadata=payload.metadata,
    )


@router.delete(
    "/projects/{id_or_name}",
    response={204: None, **error_responses(400, 404)},
)
def projects_delete(
    request: HttpRequest, id_or_name: Text, confirm: bool = False
) -> tuple[int, None]:
    """Delete a project and drop its database; requires ?confirm=true."""
    project = project_get(reference=id_or_name)
    if not confirm:
        raise DeletionNotConfirmed(project)
    project_delete(project=project)
    return 204, None
