"""Indexing jobs: durable records in the registry, run by a worker or a thread.

With CELERY_BROKER_URL set, a job goes to Celery workers (which may run on
other machines against the same PostgreSQL); without it, it runs in a
background thread of the calling process. Either way the same service runs and
writes its progress to the same `IndexJob` row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.module_loading import import_string

from indexing.embedders import Embedder
from indexing.exceptions import IndexingError, IndexJobNotFound
from indexing.models import IndexJob
from indexing.selectors import space_embedder_get
from indexing.services import (
    BatchSender,
    IndexProgress,
    IndexSummary,
    chunk_batch_embed,
    repository_index,
    repository_path_validate,
)
from registry.models import Project
from registry.services import project_alias

logger = logging.getLogger("codebase_mcp.indexing")

_PROGRESS_FIELDS = (
    "files_total",
    "files_done",
    "files_indexed",
    "files_unchanged",
    "files_deleted",
    "files_skipped",
    "skipped_by_reason",
    "chunks_total",
    "chunks_embedded",
    "chunks_to_embed",
    "embed_rate",
    "eta_seconds",
    "phase",
)


def index_job_create(
    *, project: Project, repo_path: str, force_reindex: bool = False
) -> IndexJob:
    """Record a queued job after checking the path, so bad input fails at once."""
    root = repository_path_validate(repo_path=repo_path)
    return IndexJob.objects.using("default").create(
        project=project, repo_path=str(root), force_reindex=force_reindex
    )


def index_job_get(*, job_id: str | uuid.UUID) -> IndexJob:
    """Return a job by id, or raise IndexJobNotFound."""
    try:
        key = uuid.UUID(str(job_id))
    except ValueError:
        raise IndexJobNotFound(str(job_id)) from None
    job = (
        IndexJob.objects.using("default")
        .select_related("project")
        .filter(id=key)
        .first()
    )
    if job is None:
        raise IndexJobNotFound(str(job_id))
    return job


def _job_progress_writer(job_id: uuid.UUID):
    last = [0.0]

    def write(progress: IndexProgress) -> None:
        now = time.monotonic()
        if progress.phase not in ("completed",) and now - last[0] < 0.5:
            return
        last[0] = now
        values = {name: getattr(progress, name) for name in _PROGRESS_FIELDS}
        values["heartbeat_at"] = timezone.now()
        IndexJob.objects.using("default").filter(id=job_id).update(**values)

    return write


class _Heartbeat:
    """Beat for a running job from a thread of its own until stopped.

    Progress writes beat too, but one long step (a slow embedding backend
    answering a big batch) writes none; without these beats the job would look
    abandoned and be reaped or claimed again while it still runs. A worker
    that dies stops beating with it.
    """

    def __init__(self, *, job_id: uuid.UUID, worker: str, interval: float) -> None:
        self.job_id = job_id
        self.worker = worker
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{job_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    IndexJob.objects.using("default").filter(
                        id=self.job_id,
                        status=IndexJob.Status.RUNNING,
                        worker=self.worker,
                    ).update(heartbeat_at=timezone.now())
                except Exception:  # a missed beat is retried at the next one
                    logger.warning(
                        "heartbeat of job %s failed", self.job_id, exc_info=True
                    )
        finally:
            connections.close_all()


def index_job_run(
    *, job_id: str | uuid.UUID, embedder: Embedder | None = None
) -> IndexJob:
    """Run a queued (or retried) job to the end and record the outcome.

    Expected failures (bad path, model mismatch, embedding backend down) are
    recorded on the job with their message; the job never stays `running`.
    A job that another worker holds (fresh heartbeat) or that already ended is
    left alone: a broker may deliver a task again after its worker died.
    `embedder` replaces the one of the project's vectors (default
    space_embedder_get: its shipped weights, else the configured embedder).
    """
    job = index_job_get(job_id=job_id)
    stale = timezone.now() - timedelta(seconds=settings.INDEX_JOB_HEARTBEAT_TIMEOUT)
    claimable = Q(status=IndexJob.Status.QUEUED) | Q(
        status=IndexJob.Status.RUNNING, heartbeat_at__lt=stale
    )
    worker = _worker_name()
    claimed = (
        IndexJob.objects.using("default")
        .filter(claimable, id=job.id)
        .update(
            status=IndexJob.Status.RUNNING,
            phase="starting",
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
            finished_at=None,
            error="",
            worker=worker,
            embedded_by={},
            embed_rate=0.0,
            eta_seconds=None,
        )
    )
    if not claimed:
        logger.info("job %s is %s elsewhere; not running it again", job.id, job.status)
        return job
    # Four beats per timeout: a late beat or two never makes a live job stale.
    interval = max(0.2, settings.INDEX_JOB_HEARTBEAT_TIMEOUT / 4)
    try:
        with _Heartbeat(job_id=job.id, worker=worker, interval=interval):
            summary: IndexSummary = repository_index(
                project=job.project,
                repo_path=job.repo_path,
                force_reindex=job.force_reindex,
                progress=_job_progress_writer(job.id),
                embedder=embedder,
                embed_sender=_embed_sender(job),
                on_batch=lambda written: index_job_batch_record(
                    job_id=job.id, worker=worker, written=written
                ),
            )
    except Exception as exc:
        message = (
            str(exc)
            if isinstance(exc, IndexingError)
            else f"{type(exc).__name__}: {exc}"
        )
        if not isinstance(exc, IndexingError):
            logger.exception("indexing job %s failed", job.id)
        IndexJob.objects.using("default").filter(id=job.id).update(
            status=IndexJob.Status.FAILED,
            phase="failed",
            error=message,
            finished_at=timezone.now(),
        )
    else:
        values = {name: getattr(summary, name) for name in _PROGRESS_FIELDS}
        IndexJob.objects.using("default").filter(id=job.id).update(
            **values,
            status=IndexJob.Status.COMPLETED,
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )
    return index_job_get(job_id=job.id)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _embed_sender(job: IndexJob) -> BatchSender | None:
    """Return what hands a job's embedding batches to Celery, or None without a broker."""
    if not settings.CELERY_BROKER_URL:
        return None
    send = import_string(settings.EMBED_BATCH_SENDER)

    def sender(ranges: list[tuple[int, int]]) -> None:
        send(project_id=str(job.project_id), job_id=str(job.id), ranges=ranges)

    return sender


def index_job_batch_record(
    *, job_id: str | uuid.UUID, worker: str, written: int
) -> None:
    """Add `written` vectors to a worker's count on the job (one atomic UPDATE)."""
    if not written:
        return
    IndexJob.objects.using("default").filter(id=job_id).update(
        embedded_by=RawSQL(
            "embedded_by || jsonb_build_object(%s::text, "
            "coalesce((embedded_by ->> %s)::bigint, 0) + %s)",
            [worker, worker, int(written)],
        )
    )


def embed_batch_run(
    *, project_id: str, job_id: str, first_id: int, last_id: int
) -> int:
    """Embed one batch of a job's chunks on this worker; return vectors written.

    What a Celery worker runs for each batch a job hands out. A batch whose
    project is gone, or whose chunks others embedded already, writes nothing.
    """
    project = Project.objects.using("default").filter(id=project_id).first()
    if project is None:
        return 0
    alias = project_alias(project=project)
    written = chunk_batch_embed(
        alias=alias,
        embedder=space_embedder_get(alias=alias),
        first_id=int(first_id),
        last_id=int(last_id),
    )
    index_job_batch_record(job_id=job_id, worker=_worker_name(), written=written)
    return written


def _run_in_thread(job_id: uuid.UUID) -> None:
    try:
        index_job_run(job_id=job_id)
    finally:
        # The thread's connections would otherwise stay checked out of the pools.
        connections.close_all()


def index_job_enqueue(*, job: IndexJob) -> IndexJob:
    """Hand a job to Celery when a broker is configured, else to a thread."""
    if settings.CELERY_BROKER_URL:
        # Imported here: only processes that send jobs need Celery.
        from kombu.exceptions import OperationalError

        try:
            import_string(settings.INDEX_JOB_SENDER)(job_id=str(job.id))
        except OperationalError as exc:
            # No worker would ever see the job: record why rather than leave it
            # queued forever. The URL is not quoted; it may hold a password.
            message = (
                "The job could not be queued: the Celery broker (CELERY_BROKER_URL) "
                f"is unreachable ({exc}). Start the broker, or unset "
                "CELERY_BROKER_URL to index in background threads, then retry."
            )
            IndexJob.objects.using("default").filter(id=job.id).update(
                status=IndexJob.Status.FAILED,
                phase="failed",
                error=message,
                finished_at=timezone.now(),
            )
            raise IndexingError(message) from exc
    else:
        thread = threading.Thread(
            target=_run_in_thread, args=(job.id,), name=f"index-{job.id}", daemon=True
        )
        thread.start()
    return job


def index_job_start(
    *, project: Project, repo_path: str, force_reindex: bool = False
) -> IndexJob:
    """Create a job and start it in the background; return it at once."""
    job = index_job_create(
        project=project, repo_path=repo_path, force_reindex=force_reindex
    )
    return index_job_enqueue(job=job)


def index_jobs_reap(*, timeout_seconds: int | None = None) -> int:
    """Mark running jobs whose worker stopped sending heartbeats as failed."""
    timeout_seconds = timeout_seconds or settings.INDEX_JOB_HEARTBEAT_TIMEOUT
    cutoff = timezone.now() - timedelta(seconds=timeout_seconds)
    close_old_connections()
    return (
        IndexJob.objects.using("default")
        .filter(status=IndexJob.Status.RUNNING, heartbeat_at__lt=cutoff)
        .update(
            status=IndexJob.Status.FAILED,
            phase="failed",
            error=(
                f"The worker stopped sending heartbeats for {timeout_seconds} s and is "
                "presumed dead; retry the job, indexing resumes where it stopped."
            ),
            finished_at=timezone.now(),
        )
    )


def index_job_retry(*, job_id: str | uuid.UUID) -> IndexJob:
    """Queue a failed or cancelled job again."""
    job = index_job_get(job_id=job_id)
    if job.status not in (IndexJob.Status.FAILED, IndexJob.Status.CANCELLED):
        raise IndexingError(
            f"Job {job.id} is {job.status}; only failed or cancelled jobs can be retried."
        )
    IndexJob.objects.using("default").filter(id=job.id).update(
        status=IndexJob.Status.QUEUED, phase="queued", error=""
    )
    return index_job_enqueue(job=index_job_get(job_id=job.id))
