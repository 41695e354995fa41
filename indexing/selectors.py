"""Read what is inside a project's database, and its jobs."""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from indexing.embedders import Embedder, embedder_for_space
from indexing.exceptions import UnknownRepository
from indexing.freshness import repository_freshness
from indexing.models import CodeChunk, CodeFile, EmbeddingSpace, IndexJob, Repository
from registry.databases import project_connection, project_database_size
from registry.models import Project
from registry.services import project_alias


@dataclass
class RepositoryStatus:
    id: str
    path: str
    name: str
    files: int
    chunks: int
    embedded_chunks: int
    last_indexed_at: str | None
    # Freshness: the commit the last full run read against the one checked
    # out now (None outside git), indexed files changed or gone on disk,
    # chunks still waiting for a vector, and whether a watcher follows it.
    indexed_commit: str | None = None
    indexed_branch: str | None = None
    head_commit: str | None = None
    head_branch: str | None = None
    files_changed: int = 0
    vectors_missing: int = 0
    watcher_running: bool = False


@dataclass
class ProjectStatus:
    """Counts and state of one project, read from its own database."""

    project_id: str
    name: str
    database_name: str
    size_bytes: int | None
    repositories: list[RepositoryStatus] = field(default_factory=list)
    files: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    embedded_fraction: float = 0.0
    embedding_model: str | None = None
    embedding_dimension: int | None = None
    last_indexed_at: str | None = None
    running_jobs: list[dict] = field(default_factory=list)
    # None when the project's database predates symbols (migrate_projects).
    symbols: int | None = None
    references: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def repository_find(*, alias: str, reference: str) -> Repository:
    """Return the project's indexed repository with that id, path or name."""
    value = str(reference).strip()
    try:
        key = uuid.UUID(value)
    except ValueError:
        key = None
    queryset = Repository.objects.using(alias)
    found = (
        queryset.filter(id=key).first()
        if key
        else queryset.filter(path=os.path.realpath(os.path.expanduser(value))).first()
        or queryset.filter(name=value).first()
    )
    if found is None:
        known = ", ".join(queryset.values_list("path", flat=True)[:10]) or "none yet"
        raise UnknownRepository(
            f"No repository {value!r} in this project (indexed: {known}); pass a "
            "repository id or path, or index it first."
        )
    return found


def repository_list(*, project: Project) -> list[RepositoryStatus]:
    """Return the project's repositories with file, chunk and vector counts."""
    alias = project_alias(project=project)
    files = dict(
        CodeFile.objects.using(alias)
        .values("repository_id")
        .annotate(n=Count("id"))
        .values_list("repository_id", "n")
    )
    chunk_rows = (
        CodeChunk.objects.using(alias)
        .values("repository_id")
        .annotate(
            n=Count("id"), embedded=Count("id", filter=Q(embedding__isnull=False))
        )
        .values_list("repository_id", "n", "embedded")
    )
    chunks = {repo_id: (n, embedded) for repo_id, n, embedded in chunk_rows}
    commits = _indexed_commits(alias=alias)
    out = []
    for repo in (
        Repository.objects.using(alias)
        .order_by("path")
        .only("id", "path", "name", "last_indexed_at")
    ):
        total, embedded = chunks.get(repo.id, (0, 0))
        indexed_commit, indexed_branch = commits.get(repo.id, ("", ""))
        fresh = repository_freshness(alias=alias, repository_id=repo.id, root=repo.path)
        out.append(
            RepositoryStatus(
                id=str(repo.id),
                path=repo.path,
                name=repo.name,
                files=files.get(repo.id, 0),
                chunks=total,
                embedded_chunks=embedded,
                last_indexed_at=_iso(repo.last_indexed_at),
                indexed_commit=indexed_commit or None,
                indexed_branch=indexed_branch or None,
                head_commit=fresh.head_commit,
                head_branch=fresh.head_branch,
                files_changed=fresh.files_changed,
                vectors_missing=total - embedded,
                watcher_running=fresh.watcher_running,
            )
        )
    return out


def _indexed_commits(*, alias: str) -> dict:
    """Return {repository id: (commit, branch)} of the last full runs; {} before 0007."""
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = "
            "'repositories' AND column_name = 'indexed_commit'"
        )
        if cursor.fetchone() is None:
            return {}
        cursor.execute("SELECT id, indexed_commit, indexed_branch FROM repositories")
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def project_status(*, project: Project, with_size: bool = True) -> ProjectStatus:
    """Return the project's repositories, counts, model and running jobs."""
    alias = project_alias(project=project)
    repositories = repository_list(project=project)
    space = EmbeddingSpace.objects.using(alias).first()
    last = Repository.objects.using(alias).aggregate(last=Max("last_indexed_at"))[
        "last"
    ]
    status = ProjectStatus(
        project_id=str(project.id),
        name=project.name,
        database_name=project.database_name,
        size_bytes=project_database_size(
            database_name=project.database_name, server=project.server
        )
        if with_size
        else None,
        repositories=repositories,
        files=sum(r.files for r in repositories),
        chunks=sum(r.chunks for r in repositories),
        embedded_chunks=sum(r.embedded_chunks for r in repositories),
        embedding_model=space.model_id if space else None,
        embedding_dimension=space.dimension if space else None,
        last_indexed_at=_iso(last),
        running_jobs=[
            index_job_as_dict(job=job)
            for job in IndexJob.objects.using("default").filter(
                project=project,
                status__in=[IndexJob.Status.QUEUED, IndexJob.Status.RUNNING],
            )
        ],
    )
    status.embedded_fraction = (
        round(status.embedded_chunks / status.chunks, 4) if status.chunks else 0.0
    )
    status.symbols, status.references = _navigation_counts(alias=alias)
    return status


def _navigation_counts(*, alias: str) -> tuple[int | None, int | None]:
    """Return the project's symbol and reference counts, None before migration."""
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT to_regclass('code_symbols') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None, None
        # Before indexing.0008 a reference was a row, not an array entry.
        cursor.execute("SELECT to_regclass('code_references_name') IS NULL")
        uses = "sum(cardinality(lines))" if cursor.fetchone()[0] else "count(*)"
        cursor.execute(
            "SELECT (SELECT count(*) FROM code_symbols), "
            f"(SELECT coalesce({uses}, 0) FROM code_references)"
        )
        symbols, references = cursor.fetchone()
    return symbols, references


def index_job_list(*, project: Project, limit: int = 20) -> list[IndexJob]:
    """Return a project's most recent jobs, newest first."""
    return list(IndexJob.objects.using("default").filter(project=project)[:limit])


def index_job_active_count(*, project: Project) -> int:
    """Return how many of a project's jobs are queued or running and alive.

    A running job without heartbeats for INDEX_JOB_HEARTBEAT_TIMEOUT seconds
    is dead (index_jobs_reap), so it does not count.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.INDEX_JOB_HEARTBEAT_TIMEOUT)
    return (
        IndexJob.objects.using("default")
        .filter(project_id=project.pk)
        .filter(
            Q(status=IndexJob.Status.QUEUED)
            | Q(status=IndexJob.Status.RUNNING, heartbeat_at__gte=cutoff)
        )
        .count()
    )


def index_job_as_dict(*, job: IndexJob) -> dict:
    """Return the JSON form of a job shared by every interface."""
    return {
        "job_id": str(job.id),
        "project_id": str(job.project_id),
        "repo_path": job.repo_path,
        "force_reindex": job.force_reindex,
        "status": job.status,
        "phase": job.phase,
        "files_total": job.files_total,
        "files_done": job.files_done,
        "files_indexed": job.files_indexed,
        "files_unchanged": job.files_unchanged,
        "files_deleted": job.files_deleted,
        "files_skipped": job.files_skipped,
        "skipped_by_reason": job.skipped_by_reason,
        "chunks_total": job.chunks_total,
        "chunks_embedded": job.chunks_embedded,
        "chunks_to_embed": job.chunks_to_embed,
        "embed_rate": round(job.embed_rate, 1),
        "eta_seconds": None if job.eta_seconds is None else round(job.eta_seconds, 1),
        "embedded_by": job.embedded_by or {},
        "error": job.error or None,
        "worker": job.worker or None,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "heartbeat_at": _iso(job.heartbeat_at),
    }


def duration_text(seconds: float) -> str:
    """Return a duration for people: 45 s, 12 min 5 s, 3 h 20 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def embedding_progress_text(
    *,
    phase: str,
    chunks_embedded: int,
    chunks_to_embed: int,
    embed_rate: float,
    eta_seconds: float | None,
) -> str:
    """Return one line on the embedding phase: done, speed, time left ("" before it)."""
    if not chunks_to_embed and phase != "embedding":
        return ""
    text = f"embedding {chunks_embedded} of {chunks_to_embed} chunks"
    if phase == "embedding":
        if embed_rate > 0:
            text += f", {embed_rate:.1f} chunks/s"
        text += (
            ", time left not known yet"
            if eta_seconds is None
            else f", about {duration_text(eta_seconds)} left"
        )
    return text


def space_embedder_get(*, alias: str) -> Embedder:
    """Return the embedder that makes the project's vectors (embedder_for_space).

    A project not embedded yet gets the configured one.
    """
    space = EmbeddingSpace.objects.using(alias).first()
    return embedder_for_space(model_id=space.model_id if space else None)
