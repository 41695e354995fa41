"""Shapes of the indexing REST API: jobs, repositories and project status."""

from __future__ import annotations

import uuid
from datetime import datetime

from ninja import Field, Schema

from registry.schemas import ProjectOut, Text


class IndexIn(Schema):
    """A repository to index into a project."""

    repo_path: Text = Field(
        description=(
            "Absolute path of the repository on the server; it must lie under "
            "CODEBASE_MCP_ALLOWED_ROOTS."
        ),
        examples=["/home/me/src/billing-service"],
    )
    force_reindex: bool = Field(
        default=False, description="Re-chunk and re-embed files that did not change."
    )


class RefreshIn(Schema):
    """What to bring up to date: every repository of the project, one, or some files."""

    repository: Text | None = Field(
        default=None,
        description="An indexed repository (id, path or name); default: all of them.",
    )
    paths: list[Text] | None = Field(
        default=None,
        description="Only these files (absolute, or relative to the repository).",
        examples=[["src/billing/invoice.py"]],
    )


class RefreshedOut(Schema):
    """What a refresh did to one repository."""

    repository_id: uuid.UUID
    repository_path: str
    files_indexed: int
    files_unchanged: int
    files_deleted: int
    files_skipped: int
    paths_refused: dict[str, str] = Field(
        description="Named paths not indexed, each with the reason."
    )
    chunks_written: int
    chunks_embedded: int
    seconds: float


class JobOut(Schema):
    """An indexing job with its progress counts."""

    job_id: uuid.UUID
    project_id: uuid.UUID
    repo_path: str
    force_reindex: bool
    status: str = Field(description="queued | running | completed | failed | cancelled")
    phase: str
    files_total: int
    files_done: int
    files_indexed: int
    files_unchanged: int
    files_deleted: int
    files_skipped: int
    skipped_by_reason: dict[str, int]
    chunks_total: int
    chunks_embedded: int
    chunks_to_embed: int = Field(
        description="Chunks the embedding phase has to embed (0 before it starts)."
    )
    embed_rate: float = Field(
        description="Embedding phase: chunks/s over the last 30 s, all workers."
    )
    eta_seconds: float | None = Field(
        description="Embedding phase: seconds left at that speed (null until known)."
    )
    embedded_by: dict[str, int] = Field(
        description="Vectors each worker (host:pid) wrote for this job."
    )
    error: str | None = Field(description="Why the job failed, when it did.")
    worker: str | None = Field(description="host:pid of the process that ran it.")
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


class RepositoryOut(Schema):
    """An indexed repository of a project, with its counts."""

    id: uuid.UUID
    path: str
    name: str
    files: int
    chunks: int
    embedded_chunks: int
    last_indexed_at: datetime | None
    indexed_commit: str | None = Field(
        default=None, description="The git commit the last full index run read."
    )
    indexed_branch: str | None = None
    head_commit: str | None = Field(
        default=None, description="The git commit checked out now."
    )
    head_branch: str | None = None
    files_changed: int = Field(
        default=0,
        description="Indexed files changed or gone on disk since indexing "
        "(size and mtime; cached a few seconds).",
    )
    vectors_missing: int = Field(
        default=0, description="Chunks still waiting for a vector."
    )
    watcher_running: bool = Field(
        default=False, description="Whether a watcher keeps this repository fresh."
    )


class ProjectStatusOut(Schema):
    """What a project's database holds, and which jobs are running on it."""

    size_bytes: int | None = Field(description="Size of the project's database.")
    files: int
    chunks: int
    embedded_chunks: int
    embedded_fraction: float = Field(
        description="Share of chunks that have vectors (1.0 = fully embedded)."
    )
    embedding_model: str | None
    embedding_dimension: int | None
    last_indexed_at: datetime | None
    repositories: list[RepositoryOut]
    running_jobs: list[JobOut]
    symbols: int | None = Field(
        default=None, description="Definitions indexed; null before migrate_projects."
    )
    references: int | None = Field(default=None, description="Uses of names indexed.")


class ProjectDetailOut(ProjectOut):
    """A project together with its index status."""

    status: ProjectStatusOut
