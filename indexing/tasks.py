"""Celery tasks: indexing jobs, and the batches a watcher hands over."""

from celery import shared_task

from indexing.exceptions import IndexingInProgress
from indexing.jobs import embed_batch_run, index_job_run
from indexing.services import repository_index
from registry.selectors import project_get

# A watcher's batch waits this long when another run holds its repository.
WATCH_BATCH_RETRY_SECONDS = 2
WATCH_BATCH_RETRIES = 30


@shared_task(name="indexing.run_index_job", acks_late=True)
def index_job_task(job_id: str) -> str:
    """Run one IndexJob to completion; the outcome is recorded on the job row."""
    return index_job_run(job_id=job_id).status


def index_job_send(*, job_id: str) -> None:
    """Queue a job for a Celery worker (settings.INDEX_JOB_SENDER)."""
    # Imported here: the app binds shared tasks to its broker settings, and
    # only processes that send jobs need it.
    from config.celery import app  # noqa: F401

    index_job_task.delay(job_id)


@shared_task(name="indexing.embed_batch", acks_late=True)
def embed_batch_task(project_id: str, job_id: str, first_id: int, last_id: int) -> int:
    """Embed one id range of a job's chunks; safe to run again (redelivery)."""
    return embed_batch_run(
        project_id=project_id, job_id=job_id, first_id=first_id, last_id=last_id
    )


def embed_batches_send(
    *, project_id: str, job_id: str, ranges: list[tuple[int, int]]
) -> None:
    """Queue a job's embedding batches for any worker (settings.EMBED_BATCH_SENDER)."""
    from config.celery import app  # noqa: F401

    for first_id, last_id in ranges:
        embed_batch_task.delay(project_id, job_id, first_id, last_id)


@shared_task(
    name="indexing.index_watch_batch",
    bind=True,
    acks_late=True,
    max_retries=WATCH_BATCH_RETRIES,
)
def watch_batch_task(
    self, project_id: str, repo_path: str, paths: list[str] | None
) -> dict:
    """Re-index the paths a watcher saw change (all of the repository if None)."""
    project = project_get(reference=project_id)
    try:
        summary = repository_index(
            project=project, repo_path=repo_path, paths=paths, embed_backlog=False
        )
    except IndexingInProgress as exc:
        raise self.retry(exc=exc, countdown=WATCH_BATCH_RETRY_SECONDS) from None
    return {
        "repository_path": summary.repository_path,
        "files_indexed": summary.files_indexed,
        "files_deleted": summary.files_deleted,
        "paths_refused": summary.paths_refused,
    }


def watch_batch_send(
    *, project_id: str, repo_path: str, paths: list[str] | None
) -> None:
    """Queue a watcher's batch for a Celery worker (settings.WATCH_BATCH_SENDER)."""
    from config.celery import app  # noqa: F401

    watch_batch_task.delay(project_id, repo_path, paths)
