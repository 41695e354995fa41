"""With a broker set, a watcher queues its batches and a real worker indexes them."""

import os
import signal

import pytest
from django.db import connections

from indexing.services import repository_index
from tests.celery.test_worker import broker, start_worker  # noqa: F401 (fixtures)
from tests.indexing.test_watch import (
    Watcher,
    defined,
    function_source,
    git_repository,
    wait_until,
)

pytestmark = pytest.mark.e2e


def test_a_watcher_with_a_broker_hands_batches_to_celery(
    project_factory,
    tmp_path,
    broker,  # noqa: F811
    start_worker,  # noqa: F811
):
    project = project_factory()
    repo = git_repository(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo), embed=False)
    connections.close_all()
    start_worker()
    watcher = Watcher(
        "--project",
        project.name,
        CELERY_BROKER_URL=broker,
        CELERY_TASK_DEFAULT_QUEUE=os.environ["CELERY_TASK_DEFAULT_QUEUE"],
    )
    try:
        watcher.wait_line("catch-up: queued the repository")
        (repo / "pkg" / "queued.py").write_text(function_source("queued_by_watcher"))
        watcher.wait_line("queued.py: queued 1 files")
        wait_until(
            lambda: defined(project, "queued_by_watcher") == ["pkg/queued.py"],
            what="the worker to index the queued batch",
            watcher=watcher,
        )
    finally:
        watcher.stop(signal.SIGKILL)
