"""REST endpoints of the project registry.

Create, read, change and drop projects; move them between database servers,
back them up, restore them and read their metrics.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.http import FileResponse, HttpRequest
from ninja import File, Form, Router, Status, UploadedFile

from config.access import (
    ADMIN,
    READ,
    WRITE,
    access_require,
    project_for,
    projects_readable,
)
from indexing.schemas import ProjectDetailOut
from indexing.selectors import project_status
from operations.backup import project_backup, project_restore
from operations.metrics import project_metrics
from operations.move import project_move
from registry.databases import database_name_sanitize
from registry.exceptions import RegistryError
from registry.models import Project
from registry.schemas import (
    ProjectIn,
    ProjectMetricsOut,
    ProjectMoveIn,
    ProjectMoveOut,
    ProjectOut,
    ProjectPatchIn,
    ProjectRestoreOut,
    Text,
    error_responses,
)
from registry.selectors import project_list
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
    """List the projects the token may read, ordered by name."""
    return projects_readable(request.auth, projects=project_list())


@router.post(
    "/projects",
    response={201: ProjectOut, **error_responses(400, 409)},
)
def projects_create(request: HttpRequest, payload: ProjectIn) -> Status[Project]:
    """Create a project and provision its database (write over every project)."""
    access_require(request.auth, permission=WRITE, target="every project")
    project = project_create(
        name=payload.name,
        description=payload.description,
        metadata=payload.metadata,
        server=payload.server,
    )
    return Status(201, project)


# Declared before /projects/{id_or_name}: Django takes the first route that
# matches, and ninja answers 405 when that path lacks the method. So the
# literal path also answers GET, PATCH and DELETE for a project named
# "restore" (projects_named_restore_* below).
@router.post(
    "/projects/restore",
    response={201: ProjectRestoreOut, **error_responses(400, 409)},
)
def projects_restore(
    request: HttpRequest,
    file: File[UploadedFile],
    name: Form[Text | None] = None,
    server: Form[Text | None] = None,
    replace: Form[bool] = False,
) -> Status[dict]:
    """Restore a project from an uploaded backup; an existing name needs replace.

    Needs admin over every project: it creates a project or replaces one.
    """
    access_require(request.auth, permission=ADMIN, target="every project")
    with tempfile.TemporaryDirectory(prefix="cbmcp-upload-") as work:
        archive = Path(work) / "backup.tar"
        with open(archive, "wb") as target:
            for chunk in file.chunks():
                target.write(chunk)
        report = project_restore(
            archive=archive,
            name=name or None,
            server=server or None,
            replace=replace,
            label=f"uploaded file {file.name!r}",
        )
    return Status(
        201,
        {
            "project": report.project,
            "replaced": report.replaced,
            "tables": report.tables,
            "source_project": report.source_project,
            "warnings": report.warnings,
        },
    )


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
    return _detail(project_for(request.auth, reference=id_or_name, permission=READ))


@router.patch(
    "/projects/{id_or_name}",
    response={200: ProjectOut, **error_responses(400, 404, 409)},
)
def projects_update(
    request: HttpRequest, id_or_name: Text, payload: ProjectPatchIn
) -> Project:
    """Rename a project or change its description or metadata."""
    return project_update(
        project=project_for(request.auth, reference=id_or_name, permission=WRITE),
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
) -> Status[None]:
    """Delete a project and drop its database; requires ?confirm=true."""
    project = project_for(request.auth, reference=id_or_name, permission=WRITE)
    if not confirm:
        raise DeletionNotConfirmed(project)
    project_delete(project=project)
    return Status(204, None)


# A project named "restore" shares its path with the restore route above.
@router.get(
    "/projects/restore",
    response={200: ProjectDetailOut, **error_responses(404)},
)
def projects_named_restore_detail(request: HttpRequest) -> dict:
    """Return the project named "restore" (see GET /projects/{id_or_name})."""
    return projects_detail(request, "restore")


@router.patch(
    "/projects/restore",
    response={200: ProjectOut, **error_responses(400, 404, 409)},
)
def projects_named_restore_update(
    request: HttpRequest, payload: ProjectPatchIn
) -> Project:
    """Change the project named "restore" (see PATCH /projects/{id_or_name})."""
    return projects_update(request, "restore", payload)


@router.delete(
    "/projects/restore",
    response={204: None, **error_responses(400, 404)},
)
def projects_named_restore_delete(
    request: HttpRequest, confirm: bool = False
) -> Status[None]:
    """Delete the project named "restore" (see DELETE /projects/{id_or_name})."""
    return projects_delete(request, "restore", confirm)


@router.post(
    "/projects/{id_or_name}/move",
    response={200: ProjectMoveOut, **error_responses(400, 404, 409)},
)
def projects_move(
    request: HttpRequest, id_or_name: Text, payload: ProjectMoveIn
) -> dict:
    """Move a project's database to another server; a failure leaves it in place."""
    project = project_for(request.auth, reference=id_or_name, permission=ADMIN)
    return project_move(project=project, to_server=payload.server).as_dict()


_TAR_RESPONSE = {
    "responses": {
        "200": {
            "description": "The backup: a tar of manifest.json and database.dump.",
            "content": {
                "application/x-tar": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    }
}


@router.get(
    "/projects/{id_or_name}/backup",
    response={200: None, **error_responses(404)},
    openapi_extra=_TAR_RESPONSE,
)
def projects_backup(request: HttpRequest, id_or_name: Text) -> FileResponse:
    """Download a backup of a project: a tar of its manifest and pg_dump archive."""
    project = project_for(request.auth, reference=id_or_name, permission=ADMIN)
    with tempfile.TemporaryDirectory(prefix="cbmcp-download-") as work:
        path = Path(work) / "backup.tar"
        project_backup(project=project, output=path)
        # Opened before the directory is removed: the open file stays readable
        # until FileResponse closes it after the last byte.
        stream = open(path, "rb")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return FileResponse(
        stream,
        as_attachment=True,
        filename=f"{database_name_sanitize(name=project.name)}-{stamp}.backup.tar",
        content_type="application/x-tar",
    )


@router.get(
    "/projects/{id_or_name}/metrics",
    response={200: ProjectMetricsOut, **error_responses(404)},
)
def projects_metrics(request: HttpRequest, id_or_name: Text) -> dict:
    """Return a project's size, content, searches served and latency percentiles."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    return project_metrics(project=project).as_dict()
