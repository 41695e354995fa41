"""Index jobs run in a background thread when no broker is configured."""

import time
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from indexing.exceptions import IndexingError, IndexJobNotFound, RepositoryPathInvalid
from indexing.jobs import (
    index_job_create,
    index_job_get,
    index_job_retry,
    index_job_run,
    index_job_start,
    index_jobs_reap,
)
from indexing.models import CodeFile, IndexJob
from registry.services import project_alias


def wait_for(job_id, timeout: float = 60) -> IndexJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = index_job_get(job_id=job_id)
        if job.status in (IndexJob.Status.COMPLETED, IndexJob.Status.FAILED):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job.status} {job.phase}")


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text("def alpha():\n    return 1\n")
    (root / "b.py").write_text("def beta():\n    return 2\n")
    return root


def test_background_job_completes_with_progress_recorded(
    project_factory, repo, settings
):
    settings.CELERY_BROKER_URL = ""
    project = project_factory()
    job = index_job_start(project=project, repo_path=str(repo))
    assert job.status == IndexJob.Status.QUEUED

    done = wait_for(job.id)

    assert done.status == IndexJob.Status.COMPLETED, done.error
    assert (done.files_total, done.files_indexed, done.phase) == (2, 2, "completed")
    assert done.chunks_embedded == done.chunks_total > 0
    assert done.started_at and done.finished_at and done.heartbeat_at
    assert CodeFile.objects.using(project_alias(project=project)).count() == 2


def test_bad_path_fails_at_creation_not_in_the_background(project_factory, tmp_path):
    project = project_factory()
    with pytest.raises(RepositoryPathInvalid, match="does not exist"):
        index_job_create(project=project, repo_path=str(tmp_path / "missing"))
    assert not IndexJob.objects.exists()


def test_a_failing_run_is_recorded_and_can_be_retried(project_factory, repo, settings):
    settings.CELERY_BROKER_URL = ""
    project = project_factory()
    job = index_job_create(project=project, repo_path=str(repo))
    moved = repo.rename(repo.with_name("moved"))

    failed = index_job_run(job_id=job.id)
    assert failed.status == IndexJob.Status.FAILED
    assert "does not exist" in failed.error

    moved.rename(repo)
    index_job_retry(job_id=job.id)
    assert wait_for(job.id).status == IndexJob.Status.COMPLETED


def test_silent_workers_are_reaped(project_factory, repo):
    project = project_factory()
    job = index_job_create(project=project, repo_path=str(repo))
    IndexJob.objects.filter(id=job.id).update(
        status=IndexJob.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    assert index_jobs_reap(timeout_seconds=60) == 1
    reaped = index_job_get(job_id=job.id)
    assert reaped.status == IndexJob.Status.FAILED and "heartbeat" in reaped.error


def test_unknown_job_is_a_clear_error(transactional_db):
    with pytest.raises(IndexJobNotFound, match="No indexing job"):
        index_job_get(job_id="not-a-uuid")
    with pytest.raises(IndexJobNotFound):
        index_job_get(job_id="00000000-0000-0000-0000-00000000abcd")


def test_a_job_beats_while_a_long_step_writes_no_progress(
    project_factory, tmp_path, settings, monkeypatch
):
    import indexing.jobs as jobs_module

    settings.INDEX_JOB_HEARTBEAT_TIMEOUT = 1.0
    project = project_factory()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("def a():\n    return 1\n")
    job = jobs_module.index_job_create(project=project, repo_path=str(repo))
    beats = []

    def slow_index(**kwargs):
        # One long step: no progress callback for three heartbeat timeouts.
        for _ in range(6):
            time.sleep(0.5)
            beats.append(IndexJob.objects.using("default").get(id=job.id).heartbeat_at)
        raise IndexingError("stopped on purpose")

    monkeypatch.setattr(jobs_module, "repository_index", slow_index)
    done = jobs_module.index_job_run(job_id=job.id)
    assert done.status == IndexJob.Status.FAILED and "on purpose" in done.error
    # The heartbeat kept moving, so the job never looked abandoned.
    assert len(set(beats)) >= 4
    assert max(b - a for a, b in pairwise(beats)).total_seconds() < 1.0
    # And it stops with the job.
    after = IndexJob.objects.using("default").get(id=job.id).heartbeat_at
    time.sleep(0.6)
    assert IndexJob.objects.using("default").get(id=job.id).heartbeat_at == after
