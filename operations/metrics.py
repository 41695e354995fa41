"""Measure a project: size, content, activity and search latency.

Sizes and activity come from PostgreSQL's own statistics views of the
project's database; content counts from the project's tables; searches from
the statistics every search records (search.statistics).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from indexing.selectors import project_status
from registry.databases import project_connection
from registry.models import Project
from registry.services import project_alias
from search.statistics import search_stats_read


@dataclass
class TableMetrics:
    """PostgreSQL's statistics of one table of a project database."""

    name: str
    rows: int
    dead_rows: int
    table_bytes: int
    index_bytes: int
    seq_scans: int
    index_scans: int


@dataclass
class ProjectMetrics:
    """Size, content, activity and search latency of one project."""

    project_id: str
    name: str
    server: str
    database_name: str
    size_bytes: int
    index_bytes: int
    repositories: int
    files: int
    chunks: int
    embedded_chunks: int
    embedded_fraction: float
    embedding_model: str | None
    last_indexed_at: str | None
    # Freshness: indexed files changed on disk since indexing, and how many
    # repositories a watcher follows.
    files_changed: int
    repositories_watched: int
    queries_served: int
    queries_by_mode: dict[str, int]
    search_ms_total: float
    search_latency_p50_ms: float | None
    search_latency_p95_ms: float | None
    latency_samples: int
    connections: int
    transactions_committed: int
    transactions_rolled_back: int
    blocks_read: int
    blocks_hit: int
    cache_hit_ratio: float | None
    deadlocks: int
    tables: list[TableMetrics] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def project_metrics(*, project: Project) -> ProjectMetrics:
    """Return a project's metrics, read from its own database on its server."""
    alias = project_alias(project=project)
    status = project_status(project=project, with_size=False)
    searches = search_stats_read(alias=alias)
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT pg_database_size(d.datid), d.numbackends, d.xact_commit, "
            "d.xact_rollback, d.blks_read, d.blks_hit, d.deadlocks "
            "FROM pg_stat_database d WHERE d.datname = current_database()"
        )
        size, backends, commits, rollbacks, blocks_read, blocks_hit, deadlocks = (
            cursor.fetchone()
        )
        cursor.execute(
            "SELECT relname, n_live_tup, n_dead_tup, pg_table_size(relid), "
            "pg_indexes_size(relid), coalesce(seq_scan, 0), coalesce(idx_scan, 0) "
            "FROM pg_stat_user_tables ORDER BY relname"
        )
        tables = [TableMetrics(*row) for row in cursor.fetchall()]
    blocks = (blocks_read or 0) + (blocks_hit or 0)
    p50, p95 = searches.p50_ms, searches.p95_ms
    return ProjectMetrics(
        project_id=str(project.id),
        name=project.name,
        server=project.server,
        database_name=project.database_name,
        size_bytes=int(size),
        index_bytes=sum(table.index_bytes for table in tables),
        repositories=len(status.repositories),
        files=status.files,
        chunks=status.chunks,
        embedded_chunks=status.embedded_chunks,
        embedded_fraction=status.embedded_fraction,
        embedding_model=status.embedding_model,
        last_indexed_at=status.last_indexed_at,
        files_changed=sum(r.files_changed for r in status.repositories),
        repositories_watched=sum(r.watcher_running for r in status.repositories),
        queries_served=sum(searches.queries_by_mode.values()),
        queries_by_mode=searches.queries_by_mode,
        search_ms_total=round(searches.total_ms, 3),
        search_latency_p50_ms=round(p50, 3) if p50 is not None else None,
        search_latency_p95_ms=round(p95, 3) if p95 is not None else None,
        latency_samples=searches.samples,
        connections=backends or 0,
        transactions_committed=commits or 0,
        transactions_rolled_back=rollbacks or 0,
        blocks_read=blocks_read or 0,
        blocks_hit=blocks_hit or 0,
        cache_hit_ratio=round(blocks_hit / blocks, 4) if blocks else None,
        deadlocks=deadlocks or 0,
        tables=tables,
    )
