"""REST endpoints of indexing: start jobs, follow them, list repositories."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Query, Router, Status

from config.access import READ, WRITE, job_for, project_for
from indexing.jobs import index_job_start
from indexing.schemas import IndexIn, JobOut, RefreshedOut, RefreshIn, RepositoryOut
from indexing.selectors import (
    RepositoryStatus,
    index_job_as_dict,
    index_job_list,
    repository_list,
)
from indexing.services import IndexSummary, repositories_refresh
from registry.schemas import Text, error_responses

router = Router(tags=["indexing"])

MAX_JOBS_LISTED = 100


@router.post(
    "/projects/{id_or_name}/index",
    response={202: JobOut, **error_responses(400, 404, 409)},
)
def index_start(
    request: HttpRequest, response: HttpResponse, id_or_name: Text, payload: IndexIn
) -> Status[dict]:
    """Start indexing a repository in the background; poll the returned job."""
    job = index_job_start(
        project=project_for(request.auth, reference=id_or_name, permission=WRITE),
        repo_path=payload.repo_path,
        force_reindex=payload.force_reindex,
    )
    response["Location"] = reverse(
        f"{request.resolver_match.namespace}:job_detail", kwargs={"job_id": job.id}
    )
    return Status(202, index_job_as_dict(job=job))


@router.post(
    "/projects/{id_or_name}/refresh",
    response={200: list[RefreshedOut], **error_responses(400, 404, 409)},
)
def refresh(
    request: HttpRequest, id_or_name: Text, payload: RefreshIn
) -> list[IndexSummary]:
    """Update the index with what changed on disk (or the named files) and say what changed."""
    return repositories_refresh(
        project=project_for(request.auth, reference=id_or_name, permission=WRITE),
        repository=payload.repository,
        paths=payload.paths,
    )


@router.get(
    "/jobs/{job_id}",
    url_name="job_detail",
    response={200: JobOut, **error_responses(404)},
)
def job_detail(request: HttpRequest, job_id: str) -> dict:
    """Return an indexing job's status, progress counts and error, if any."""
    return index_job_as_dict(job=job_for(request.auth, job_id=job_id))


@router.get(
    "/projects/{id_or_name}/jobs",
    response={200: list[JobOut], **error_responses(404)},
)
def jobs_list(
    request: HttpRequest,
    id_or_name: Text,
    limit: int = Query(20, ge=1, le=MAX_JOBS_LISTED),
) -> list[dict]:
    """List a project's most recent indexing jobs, newest first."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    jobs = index_job_list(project=project, limit=limit)
    return [index_job_as_dict(job=job) for job in jobs]


@router.get(
    "/projects/{id_or_name}/repositories",
    response={200: list[RepositoryOut], **error_responses(404)},
)
def repositories_list(request: HttpRequest, id_or_name: Text) -> list[RepositoryStatus]:
    """List a project's indexed repositories with file, chunk and vector counts."""
    return repository_list(
        project=project_for(request.auth, reference=id_or_name, permission=READ)
    )
