"""Indexing jobs run by a real Celery worker over a real Redis broker.

The worker is a separate `celery -A config worker` process on the same
embedded PostgreSQL and test registry as this process, so everything it sees
must be committed: these tests use `transactional_db` (via project_factory).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections

from indexing.exceptions import IndexingError
from indexing.jobs import (
    index_job_create,
    index_job_get,
    index_job_retry,
    index_job_run,
    index_job_start,
    index_jobs_reap,
)
from indexing.models import CodeChunk, CodeFile, IndexJob
from registry.databases import project_connection
from registry.services import project_alias

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# A Redis database for tests, and a queue of its own for each test (removed
# after it, with its unacknowledged messages), so leftover messages never reach
# another test's worker, nor another checkout's suite running beside this one.
BROKER_URL = "redis://127.0.0.1:6379/6"
FINISHED = (IndexJob.Status.COMPLETED, IndexJob.Status.FAILED)

SMALL_MODULE = textwrap.dedent('''
    import time


    def retry_with_backoff(call, attempts=3):
        """Call again after waiting longer each time."""
        delay = 0.1
        for _ in range(attempts):
            try:
                return call()
            except OSError:
                time.sleep(delay)
                delay *= 2
        raise RuntimeError("gave up")
    ''')


def small_repository(root: Path) -> Path:
    """Write a three-file repository and return its root."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "net.py").write_text(SMALL_MODULE)
    (root / "pkg" / "__init__.py").write_text('"""Networking helpers."""\n')
    (root / "README.md").write_text("# Demo\n\nA tiny repository for tests.\n")
    return root


def big_repository(root: Path, *, files: int) -> Path:
    """Write `files` one-function Python modules and return the root."""
    for n in range(files):
        folder = root / f"pkg_{n // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"module_{n:03}.py").write_text(
            f"def function_{n}(value):\n    return value * {n}\n"
        )
    return root


class Worker:
    """A `celery -A config worker` subprocess with its output in a log file."""

    def __init__(
        self, *, broker_url: str, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        from config.celery import app

        self.log_path = log_path
        env = {
            **os.environ,
            **(env or {}),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CELERY_BROKER_URL": broker_url,
            # pytest-django renamed `default` to the test registry; the worker
            # must read and write the same job rows.
            "REGISTRY_DATABASE_NAME": connections["default"].settings_dict["NAME"],
        }
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool=solo", "--loglevel=WARNING",
            "-Q", app.conf.task_default_queue,
            "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        """Return the last part of the worker's output, for failure messages."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """End the worker at once, as a crash or an OOM kill would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop the worker warmly if it is idle, else kill it."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def queue_forget(client, queue: str) -> None:
    """Delete a queue and its messages delivered but never acknowledged."""
    client.delete(queue)
    for tag, payload in client.hgetall("unacked").items():
        if queue.encode() in payload:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture
def broker(settings, monkeypatch) -> Iterator[str]:
    """Point this process and its children at a fresh queue; yield the broker URL."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"no Redis broker at {BROKER_URL} ({exc}); start redis-server")
    queue = f"codebase-mcp-test-{uuid.uuid4().hex[:12]}"
    settings.CELERY_BROKER_URL = BROKER_URL
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    monkeypatch.setenv("CELERY_TASK_DEFAULT_QUEUE", queue)
    yield BROKER_URL
    queue_forget(client, queue)
    client.close()


def celery_app_point_at(url: str) -> None:
    """Make the Celery app of this process send to `url`.

    The app reads Django settings once per process and caches its connection
    and producer pools on the first send, so a settings override alone would
    not reach it; Celery has no public call that forgets them.
    """
    from django.conf import settings

    from config.celery import app

    app.conf.broker_url = url
    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def start_worker(broker, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Return a function starting workers (extra environment as keywords); stop them after."""
    celery_app_point_at(broker)
    workers: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(
            broker_url=broker,
            log_path=tmp_path / f"worker-{len(workers) + 1}.log",
            env=env,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def job_wait(
    job_id: uuid.UUID,
    *,
    until: Callable[[IndexJob], bool],
    worker: Worker | None = None,
    timeout: float = 120.0,
) -> IndexJob:
    """Poll the job row until `until` holds; fail early if the worker dies."""
    deadline = time.monotonic() + timeout
    while True:
        job = IndexJob.objects.using("default").get(id=job_id)
        if until(job):
            return job
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited while job {job.status}:\n{worker.log()}")
        if time.monotonic() > deadline:
            log = worker.log() if worker else ""
            pytest.fail(f"job stuck at {job.status}/{job.phase} {job.error}\n{log}")
        time.sleep(0.05)


def chunk_keys(alias: str) -> list[tuple[str, int, int]]:
    return list(
        CodeChunk.objects.using(alias).values_list(
            "relative_path", "start_line", "end_line"
        )
    )


def advisory_locks_wait_released(alias: str, timeout: float = 10.0) -> None:
    """Wait until no session holds an advisory lock in the project database.

    A killed worker's PostgreSQL session ends, releasing its lock, once the
    server notices the closed socket; a retry started before that would be
    refused as a concurrent run.
    """
    deadline = time.monotonic() + timeout
    with project_connection(database_name=alias).cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                "database = (SELECT oid FROM pg_database WHERE datname = "
                "current_database())"
            )
            if cursor.fetchone()[0] == 0:
                return
            assert time.monotonic() < deadline, "the dead worker's lock was not freed"
            time.sleep(0.05)


def test_a_worker_runs_a_queued_job_to_completion(
    project_factory, start_worker, tmp_path
):
    repo = small_repository(tmp_path / "repo")
    project = project_factory()
    worker = start_worker()

    job = index_job_start(project=project, repo_path=str(repo))
    assert job.status == IndexJob.Status.QUEUED

    done = job_wait(job.id, until=lambda j: j.status in FINISHED, worker=worker)
    assert done.status == IndexJob.Status.COMPLETED, done.error
    # The worker process ran it, not a thread of this one.
    assert done.worker.rsplit(":", 1)[1] == str(worker.pid)
    assert (done.files_total, done.files_indexed) == (3, 3)
    alias = project_alias(project=project)
    assert CodeFile.objects.using(alias).count() == 3
    chunks = CodeChunk.objects.using(alias)
    assert chunks.count() == done.chunks_total == done.chunks_embedded > 0
    assert not chunks.filter(embedding__isnull=True).exists()
    assert chunks.filter(symbol="retry_with_backoff").exists()


def test_a_killed_worker_is_reaped_and_the_retry_indexes_every_file_once(
    project_factory, start_worker, tmp_path
):
    files = 600
    repo = big_repository(tmp_path / "big", files=files)
    project = project_factory()
    alias = project_alias(project=project)
    first = start_worker()

    job = index_job_start(project=project, repo_path=str(repo))
    job_wait(
        job.id,
        until=lambda j: (
            j.status == IndexJob.Status.RUNNING
            and (j.files_done > 0 or j.chunks_embedded > 0)
        ),
        worker=first,
    )
    first.kill()

    # Nobody is left to record anything: the row still says running, and the
    # work is partly done.
    assert index_job_get(job_id=job.id).status == IndexJob.Status.RUNNING
    assert (
        CodeFile.objects.using(alias).count() < files
        or CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists()
    )

    second = start_worker()
    # Heartbeats stopped with the worker; once they are a second old, reaping
    # with a one-second timeout marks the job failed.
    deadline = time.monotonic() + 10
    while index_jobs_reap(timeout_seconds=1) == 0:
        assert time.monotonic() < deadline, "the dead job was never reaped"
        time.sleep(0.1)
    reaped = index_job_get(job_id=job.id)
    assert reaped.status == IndexJob.Status.FAILED
    assert "stopped sending heartbeats" in reaped.error

    advisory_locks_wait_released(alias)
    assert index_job_retry(job_id=job.id).status == IndexJob.Status.QUEUED
    done = job_wait(job.id, until=lambda j: j.status in FINISHED, worker=second)

    assert done.status == IndexJob.Status.COMPLETED, done.error
    assert done.worker.rsplit(":", 1)[1] == str(second.pid)
    assert CodeFile.objects.using(alias).count() == files
    keys = chunk_keys(alias)
    assert len(keys) == len(set(keys)) == done.chunks_total
    assert {path for path, _, _ in keys} == {
        f"pkg_{n // 100}/module_{n:03}.py" for n in range(files)
    }
    assert not CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists()


def test_a_second_job_for_the_same_repository_fails_while_the_first_runs(
    project_factory, settings, tmp_path
):
    settings.CELERY_BROKER_URL = ""
    # Refuse at once rather than wait for the first run to let go.
    settings.INDEX_LOCK_WAIT_SECONDS = 0.0
    files = 300
    repo = big_repository(tmp_path / "repo", files=files)
    project = project_factory()
    alias = project_alias(project=project)
    # Open this thread's pool now, so the second run asks for the lock at once.
    project_connection(database_name=alias).ensure_connection()
    first = index_job_start(project=project, repo_path=str(repo))
    # Storing is reported only once the run holds the repository's lock.
    job_wait(first.id, until=lambda j: j.phase in ("storing", "embedding"))

    # The first job runs in a thread runner; run the second one here, with a
    # database session of its own as a second worker would have.
    second = index_job_run(
        job_id=index_job_create(project=project, repo_path=str(repo)).id
    )

    assert second.status == IndexJob.Status.FAILED
    assert second.phase == "failed"
    indexing = f"{repo.resolve()} is being indexed into project {project.name!r}"
    assert indexing in second.error
    assert "another run; wait for it to finish" in second.error
    done = job_wait(first.id, until=lambda j: j.status in FINISHED)
    assert done.status == IndexJob.Status.COMPLETED, done.error
    assert done.finished_at > second.finished_at
    assert done.files_indexed == files
    keys = chunk_keys(alias)
    assert len(keys) == len(set(keys)) == done.chunks_total == files


def test_an_unreachable_broker_fails_the_job_with_a_clear_message(
    project_factory, settings, tmp_path
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    url = f"redis://127.0.0.1:{port}/0"
    settings.CELERY_BROKER_URL = url
    celery_app_point_at(url)
    repo = small_repository(tmp_path / "repo")
    project = project_factory()
    try:
        with pytest.raises(IndexingError, match="could not be queued"):
            index_job_start(project=project, repo_path=str(repo))
    finally:
        celery_app_point_at(BROKER_URL)
    job = IndexJob.objects.using("default").get(project=project)
    assert job.status == IndexJob.Status.FAILED
    assert "could not be queued" in job.error
    assert "CELERY_BROKER_URL" in job.error
