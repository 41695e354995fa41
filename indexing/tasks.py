"""Celery task that runs an indexing job (the same service the CLI runs)."""

from celery import shared_task

from indexing.jobs import index_job_run


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
