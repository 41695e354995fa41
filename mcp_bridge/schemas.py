"""Typed results of the MCP tools (their output schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from indexing.schemas import RefreshedOut, RepositoryOut
from search.schemas import (
    FileOutlineOut,
    GrepSearchOut,
    ProjectOutcomeOut,
    ReferenceSearchOut,
    SymbolSearchOut,
)


class ProjectRef(BaseModel):
    """The project that answered a call and how it was resolved."""

    id: str
    name: str
    database_name: str
    resolved_by: str = Field(
        description="explicit | session_config | workflow_mcp | default"
    )
    config_path: str | None = None


class WorkingDirectoryResult(BaseModel):
    directory: str
    project: ProjectRef
    config_path: str | None


class IndexResult(BaseModel):
    repository_id: str
    repository_path: str
    files_indexed: int
    files_unchanged: int
    files_deleted: int
    files_skipped: int
    skipped_by_reason: dict[str, int]
    chunks_total: int
    chunks_written: int
    chunks_embedded: int
    embedding_model: str
    duration_seconds: float
    project: ProjectRef


class RefreshResult(BaseModel):
    repositories: list[RefreshedOut]
    duration_seconds: float
    project: ProjectRef


class JobStarted(BaseModel):
    job_id: str
    status: str
    repo_path: str
    project: ProjectRef


class JobStatus(BaseModel):
    job_id: str
    project_id: str
    repo_path: str
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
        default=0, description="Chunks the embedding phase has to embed."
    )
    embed_rate: float = Field(
        default=0.0, description="Embedding: chunks/s over the last 30 s."
    )
    eta_seconds: float | None = Field(
        default=None, description="Embedding: seconds left (null until known)."
    )
    embedded_by: dict[str, int] = Field(
        default_factory=dict, description="Vectors written per worker (host:pid)."
    )
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class SearchHit(BaseModel):
    file_path: str = Field(description="Path relative to the repository root")
    repository: str
    repository_id: str
    start_line: int
    end_line: int
    language: str
    symbol: str | None = Field(description="Qualified name: Class.method, Type.Func")
    kind: str
    score: float
    content: str
    context_before: str
    context_after: str
    stale: bool = Field(description="True when the file changed on disk since indexing")
    container: str | None = Field(
        default=None, description="For a method: its class (or impl, struct...)."
    )
    lines_cut: int = Field(
        default=0, description="Lines of the code not shown (snippet_lines, output)."
    )
    project: str | None = Field(
        default=None, description="The hit's project, in a search over several."
    )


class SearchCodeResult(BaseModel):
    results: list[SearchHit]
    total_count: int
    latency_ms: float
    mode: str
    embedded_fraction: float = Field(
        description="Share of the project's chunks that have vectors (1.0 = fully embedded)"
    )
    truncated: bool = Field(description="True when max_tokens cut the result list")
    notes: list[str]
    project: ProjectRef | None = Field(
        default=None, description="The project searched (null over several)."
    )
    projects: list[ProjectOutcomeOut] | None = Field(
        default=None,
        description="Over several projects: how each answered (ok, failed, timed_out).",
    )


class ProjectInfo(BaseModel):
    id: str
    name: str
    description: str
    database_name: str
    created_at: str


class ProjectList(BaseModel):
    projects: list[ProjectInfo]


class ProjectStatusResult(BaseModel):
    project: ProjectRef
    repositories: list[RepositoryOut]
    files: int
    chunks: int
    embedded_chunks: int
    embedded_fraction: float
    embedding_model: str | None
    last_indexed_at: str | None
    size_bytes: int | None
    running_jobs: list[JobStatus]
    symbols: int | None = Field(
        default=None,
        description="Definitions indexed (find_symbol); null before "
        "the project's database is migrated.",
    )
    references: int | None = Field(default=None, description="Uses of names indexed.")


class FindSymbolResult(SymbolSearchOut):
    project: ProjectRef | None = None
    projects: list[ProjectOutcomeOut] | None = None


class FindReferencesResult(ReferenceSearchOut):
    project: ProjectRef


class FileOutlineResult(FileOutlineOut):
    project: ProjectRef


class GrepCodeResult(GrepSearchOut):
    project: ProjectRef | None = None
    projects: list[ProjectOutcomeOut] | None = None
