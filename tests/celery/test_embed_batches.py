"""A job's embedding phase shared by real Celery workers over a real Redis broker.

Every write of a vector is recorded by a trigger the test installs in the
project's database (PostgreSQL itself, not a stand-in), with the writing
session's application_name, which each worker process sets through libpq's
PGAPPNAME: so "exactly once per chunk" and "who wrote it" are read from what
the database did.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
from django.db import connections

from indexing.embedders import embedder_get
from indexing.jobs import index_job_create, index_job_start
from indexing.models import CodeChunk, IndexJob
from indexing.services import embed_ranges, embedding_space_check, repository_index
from indexing.tasks import embed_batches_send
from registry.databases import project_connection
from registry.services import project_alias
from tests.celery.test_worker import (  # noqa: F401 (fixtures)
    BROKER_URL,
    FINISHED,
    big_repository,
    broker,
    job_wait,
    start_worker,
)

pytestmark = pytest.mark.e2e

BATCH = "16"


def writes_log_install(alias: str) -> None:
    """Record every vector written to code_chunks: chunk id and writing session."""
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "CREATE TABLE test_vector_writes (chunk_id bigint, app text, "
            "at timestamptz DEFAULT clock_timestamp())"
        )
        cursor.execute(
            "CREATE FUNCTION test_vector_written() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN INSERT INTO test_vector_writes (chunk_id, app) VALUES "
            "(NEW.id, current_setting('application_name')); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_vector_written AFTER UPDATE OF embedding ON "
            "code_chunks FOR EACH ROW WHEN (NEW.embedding IS NOT NULL) "
            "EXECUTE FUNCTION test_vector_written()"
        )


def logged_project(project_factory, root, *, files: int):
    """Return (repository, project, alias): a repository and a project logging writes."""
    repo = big_repository(root, files=files)
    project = project_factory()
    alias = project_alias(project=project)
    writes_log_install(alias)
    connections.close_all()
    return repo, project, alias


def writes(alias: str) -> list[tuple[int, str]]:
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT chunk_id, app FROM test_vector_writes ORDER BY at")
        return cursor.fetchall()


def vectors(alias: str) -> dict[tuple[str, int, int], str]:
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT relative_path, start_line, end_line, embedding::text "
            "FROM code_chunks"
        )
        return {(p, s, e): v for p, s, e, v in cursor.fetchall()}


def queue_drained(timeout: float = 60.0) -> None:
    """Wait until the broker holds no message, queued or unacknowledged."""
    from config.celery import app

    client = redis.Redis.from_url(BROKER_URL)
    deadline = time.monotonic() + timeout
    queue = app.conf.task_default_queue

    def unacknowledged() -> bool:
        return any(queue.encode() in payload for payload in client.hvals("unacked"))

    try:
        while client.llen(queue) or unacknowledged():
            assert time.monotonic() < deadline, "the workers left messages queued"
            time.sleep(0.05)
    finally:
        client.close()


def test_a_batch_delivered_three_times_writes_each_vector_once(
    project_factory,
    start_worker,  # noqa: F811
    tmp_path,
):
    repo = big_repository(tmp_path / "repo", files=60)
    project = project_factory()
    alias = project_alias(project=project)
    writes_log_install(alias)
    repository_index(project=project, repo_path=str(repo), embed=False)
    embedding_space_check(alias=alias, embedder=embedder_get())
    job = index_job_create(project=project, repo_path=str(repo))
    ranges = embed_ranges(alias=alias, batch_size=16)
    assert len(ranges) >= 4
    connections.close_all()
    worker = start_worker(PGAPPNAME="worker-a")

    # As a broker would after losing acknowledgements: every batch three times.
    for _ in range(3):
        embed_batches_send(
            project_id=str(project.id), job_id=str(job.id), ranges=ranges
        )
    queue_drained()

    chunks = CodeChunk.objects.using(alias)
    assert chunks.count() == 60
    assert not chunks.filter(embedding__isnull=True).exists(), worker.log()
    written = Counter(chunk_id for chunk_id, _ in writes(alias))
    assert set(written) == set(chunks.values_list("id", flat=True))
    assert set(written.values()) == {1}
    assert {app for _, app in writes(alias)} == {"worker-a"}
    recorded = IndexJob.objects.using("default").get(id=job.id).embedded_by
    assert list(recorded.values()) == [60]
    assert list(recorded)[0].endswith(f":{worker.pid}")


def test_two_workers_share_a_job_and_write_what_one_process_writes(
    project_factory,
    start_worker,  # noqa: F811
    tmp_path,
):
    files = 300
    repo, shared, alias = logged_project(project_factory, tmp_path / "r", files=files)
    first = start_worker(PGAPPNAME="worker-1", INDEX_EMBED_BATCH=BATCH)
    second = start_worker(PGAPPNAME="worker-2", INDEX_EMBED_BATCH=BATCH)

    job = index_job_start(project=shared, repo_path=str(repo))
    done = job_wait(job.id, until=lambda j: j.status in FINISHED, timeout=300)

    assert done.status == IndexJob.Status.COMPLETED, done.error + first.log()
    assert done.chunks_embedded == done.chunks_to_embed == files
    # Both processes wrote vectors, and no chunk was written twice.
    by_app = Counter(app for _, app in writes(alias))
    assert set(by_app) == {"worker-1", "worker-2"}, by_app
    assert sum(by_app.values()) == files
    assert len({chunk_id for chunk_id, _ in writes(alias)}) == files
    assert sorted(done.embedded_by.values()) == sorted(by_app.values())
    assert {w.rsplit(":", 1)[1] for w in done.embedded_by} == {
        str(first.pid),
        str(second.pid),
    }

    # The same repository embedded by this one process, without a broker.
    alone = project_factory()
    repository_index(project=alone, repo_path=str(repo))
    assert vectors(alias) == vectors(project_alias(project=alone))


def test_a_worker_killed_mid_batch_leaves_its_batch_to_others_and_the_job_completes(
    project_factory,
    start_worker,  # noqa: F811
    tmp_path,
):
    files = 1200
    repo, project, alias = logged_project(project_factory, tmp_path / "r", files=files)
    workers = {
        name: start_worker(PGAPPNAME=name, INDEX_EMBED_BATCH="32")
        for name in ("worker-1", "worker-2")
    }
    job = index_job_start(project=project, repo_path=str(repo))
    running = job_wait(job.id, until=lambda j: j.phase == "embedding", timeout=300)
    # The job runs on one worker; the other takes batches, and is killed.
    runner_name = next(
        name
        for name, worker in workers.items()
        if running.worker.endswith(f":{worker.pid}")
    )
    helper_name = next(name for name in workers if name != runner_name)
    runner, helper = workers[runner_name], workers[helper_name]

    # Kill the helper while it holds a batch: an open transaction of its own
    # in the project's database, with row locks (so a transaction id).
    deadline = time.monotonic() + 120
    with project_connection(database_name=alias).cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                "application_name = %s AND backend_xid IS NOT NULL",
                [project.database_name, helper_name],
            )
            if cursor.fetchone()[0]:
                helper.kill()
                break
            status = IndexJob.objects.using("default").get(id=job.id).status
            assert status not in FINISHED, (
                "the job ended before the helper held a batch"
            )
            assert time.monotonic() < deadline, helper.log()
            time.sleep(0.005)

    done = job_wait(job.id, until=lambda j: j.status in FINISHED, worker=runner)
    assert done.status == IndexJob.Status.COMPLETED, done.error
    chunks = CodeChunk.objects.using(alias)
    assert chunks.count() == files
    assert not chunks.filter(embedding__isnull=True).exists()
    log = writes(alias)
    written = Counter(chunk_id for chunk_id, _ in log)
    assert len(written) == files and set(written.values()) == {1}
    # What the helper committed before it died is counted as its work; its
    # open batch died with it and the runner wrote those chunks too.
    by_app = Counter(app for _, app in log)
    helper_recorded = sum(
        n for w, n in done.embedded_by.items() if w.endswith(f":{helper.pid}")
    )
    assert by_app[helper_name] == helper_recorded
    assert by_app[runner_name] == files - helper_recorded
