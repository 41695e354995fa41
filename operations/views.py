"""Plain Django views of operations: every project's metrics for Prometheus."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from config.access import Grant, projects_readable
from config.auth import ApiTokenAuth, ApiTokenError
from operations.metrics import ProjectMetrics, project_metrics
from registry.exceptions import RegistryError
from registry.selectors import project_list

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "codebase_mcp"

# name -> (type, help); the order here is the order of the exposition.
_FAMILIES: dict[str, tuple[str, str]] = {
    "projects": ("gauge", "Projects registered, by database server."),
    "project_up": ("gauge", "1 when the project's database answered, else 0."),
    "project_database_size_bytes": ("gauge", "Size of the project database on disk."),
    "project_index_size_bytes": ("gauge", "Size of every index of the project."),
    "project_repositories": ("gauge", "Repositories indexed into the project."),
    "project_files": ("gauge", "Files indexed into the project."),
    "project_chunks": ("gauge", "Chunks stored in the project."),
    "project_embedded_chunks": ("gauge", "Chunks that have a vector."),
    "project_embedded_ratio": ("gauge", "Fraction of chunks that have a vector."),
    "project_last_indexed_timestamp_seconds": (
        "gauge",
        "When a repository of the project was last indexed (Unix time).",
    ),
    "project_searches_total": ("counter", "Searches served, by mode."),
    "project_search_latency_seconds": (
        "summary",
        "Search latency; quantiles over the most recent searches of every mode.",
    ),
    "project_connections": ("gauge", "Open server connections to the database."),
    "project_transactions_total": ("counter", "Transactions, by outcome."),
    "project_cache_hit_ratio": ("gauge", "Share of block reads served from cache."),
    "project_deadlocks_total": ("counter", "Deadlocks detected in the database."),
    "project_table_rows": ("gauge", "Estimated live rows, by table."),
    "project_table_dead_rows": ("gauge", "Estimated dead rows, by table."),
    "project_table_size_bytes": ("gauge", "Table size on disk, by table."),
    "project_table_index_size_bytes": ("gauge", "Index size on disk, by table."),
}


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics of the projects the token may read, in Prometheus format.

    Guarded like the REST API: `Authorization: Bearer <token>`; a token over
    some projects sees those projects' series only (and counts only them).
    """
    try:
        grant = ApiTokenAuth()(request)
    except ApiTokenError as exc:
        response = HttpResponse(
            f"{exc}\n", status=401, content_type="text/plain; charset=utf-8"
        )
        response["WWW-Authenticate"] = 'Bearer realm="codebase-mcp"'
        return response
    return HttpResponse(metrics_exposition(grant=grant), content_type=CONTENT_TYPE)


def metrics_exposition(*, grant: Grant) -> str:
    """Return the metrics of the projects `grant` may read, in Prometheus format."""
    samples: dict[str, list[str]] = defaultdict(list)
    per_server: dict[str, int] = defaultdict(int)
    for project in projects_readable(grant, projects=project_list()):
        per_server[project.server] += 1
        labels = {"project": project.name, "server": project.server}
        try:
            metrics = project_metrics(project=project)
        except (RegistryError, DatabaseError):
            # An unreachable project is reported, not allowed to hide the rest.
            _add(samples, "project_up", labels, 0)
            continue
        _add(samples, "project_up", labels, 1)
        _project_samples(samples, labels, metrics)
    for server, count in sorted(per_server.items()):
        _add(samples, "projects", {"server": server}, count)
    lines: list[str] = []
    for family, (kind, text) in _FAMILIES.items():
        if not samples.get(family):
            continue
        lines.append(f"# HELP {PREFIX}_{family} {text}")
        lines.append(f"# TYPE {PREFIX}_{family} {kind}")
        lines.extend(samples[family])
    return "\n".join(lines) + "\n"


def _project_samples(
    samples: dict[str, list[str]], labels: dict[str, str], metrics: ProjectMetrics
) -> None:
    _add(samples, "project_database_size_bytes", labels, metrics.size_bytes)
    _add(samples, "project_index_size_bytes", labels, metrics.index_bytes)
    _add(samples, "project_repositories", labels, metrics.repositories)
    _add(samples, "project_files", labels, metrics.files)
    _add(samples, "project_chunks", labels, metrics.chunks)
    _add(samples, "project_embedded_chunks", labels, metrics.embedded_chunks)
    _add(samples, "project_embedded_ratio", labels, metrics.embedded_fraction)
    if metrics.last_indexed_at:
        indexed = datetime.fromisoformat(metrics.last_indexed_at).timestamp()
        _add(samples, "project_last_indexed_timestamp_seconds", labels, indexed)
    for mode, queries in metrics.queries_by_mode.items():
        _add(samples, "project_searches_total", {**labels, "mode": mode}, queries)
    latency = "project_search_latency_seconds"
    for quantile, value in (
        ("0.5", metrics.search_latency_p50_ms),
        ("0.95", metrics.search_latency_p95_ms),
    ):
        if value is not None:
            _add(samples, latency, {**labels, "quantile": quantile}, value / 1000)
    _add(samples, latency, labels, metrics.search_ms_total / 1000, suffix="_sum")
    _add(samples, latency, labels, metrics.queries_served, suffix="_count")
    _add(samples, "project_connections", labels, metrics.connections)
    for outcome, value in (
        ("commit", metrics.transactions_committed),
        ("rollback", metrics.transactions_rolled_back),
    ):
        _add(
            samples, "project_transactions_total", {**labels, "outcome": outcome}, value
        )
    if metrics.cache_hit_ratio is not None:
        _add(samples, "project_cache_hit_ratio", labels, metrics.cache_hit_ratio)
    _add(samples, "project_deadlocks_total", labels, metrics.deadlocks)
    for table in metrics.tables:
        table_labels = {**labels, "table": table.name}
        _add(samples, "project_table_rows", table_labels, table.rows)
        _add(samples, "project_table_dead_rows", table_labels, table.dead_rows)
        _add(samples, "project_table_size_bytes", table_labels, table.table_bytes)
        _add(samples, "project_table_index_size_bytes", table_labels, table.index_bytes)


def _add(
    samples: dict[str, list[str]],
    family: str,
    labels: dict[str, str],
    value: float,
    *,
    suffix: str = "",
) -> None:
    rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
    # repr, not a format spec: `:g` would round byte counts to six digits.
    number = str(value) if isinstance(value, int) else repr(float(value))
    samples[family].append(f"{PREFIX}_{family}{suffix}{{{rendered}}} {number}")


def _escape(value: str) -> str:
    """Escape a label value as the text format requires."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
