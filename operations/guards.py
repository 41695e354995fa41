"""Refusals shared by the operations that replace a project's database."""

from __future__ import annotations

from indexing.selectors import index_job_active_count
from registry.exceptions import ProjectOperationRefused
from registry.models import Project


def project_jobs_refuse(*, project: Project, action: str) -> None:
    """Refuse to touch a project that an indexing job is (or may soon be) writing."""
    count = index_job_active_count(project=project)
    if count:
        raise ProjectOperationRefused(
            f"Project {project.name!r} has {count} queued or running indexing job(s); "
            f"wait for them to finish (manage.py index / get_indexing_status show "
            f"them), then {action} again."
        )
