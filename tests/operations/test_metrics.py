"""Metrics follow real activity: indexing grows them, searches are counted."""

import io
import json

from django.core.management import call_command
from django.test import RequestFactory

from config.access import LOCAL
from indexing.services import repository_index
from operations.metrics import project_metrics
from operations.views import metrics_exposition, metrics_view
from registry.services import project_alias
from search import statistics
from search.selectors import chunk_search
from search.statistics import search_stat_record


def test_metrics_reflect_indexing_and_searches(make_project, repo, settings):
    project = make_project("measured", server="second")
    empty = project_metrics(project=project)
    assert (empty.chunks, empty.files, empty.queries_served) == (0, 0, 0)
    assert empty.search_latency_p50_ms is None

    repository_index(project=project, repo_path=str(repo))
    for _ in range(5):
        chunk_search(project=project, query="parseHTTPHeader", mode="keyword")
    for _ in range(2):
        chunk_search(project=project, query="retry a failed call", mode="hybrid")
    metrics = project_metrics(project=project)

    assert (metrics.server, metrics.repositories, metrics.files) == ("second", 1, 4)
    assert metrics.chunks > 0 and metrics.embedded_fraction == 1.0
    assert metrics.size_bytes > empty.size_bytes and metrics.index_bytes > 0
    assert metrics.last_indexed_at is not None
    assert metrics.queries_served == 7 and metrics.latency_samples == 7
    assert metrics.queries_by_mode == {"hybrid": 2, "keyword": 5}
    assert 0 < metrics.search_latency_p50_ms <= metrics.search_latency_p95_ms
    assert metrics.search_ms_total >= metrics.search_latency_p95_ms
    tables = {table.name: table for table in metrics.tables}
    assert tables["code_chunks"].table_bytes > 0

    listed = json.loads(_run("projectstats", "--json"))
    assert [(m["name"], m["queries_served"]) for m in listed] == [("measured", 7)]
    assert "measured" in _run("projectstats", "measured")

    text = metrics_exposition(grant=LOCAL)
    labels = 'project="measured",server="second"'
    assert f'codebase_mcp_project_searches_total{{{labels},mode="keyword"}} 5' in text
    assert f"codebase_mcp_project_search_latency_seconds_count{{{labels}}} 7" in text
    assert f"codebase_mcp_project_files{{{labels}}} 4" in text
    assert 'codebase_mcp_projects{server="second"} 1' in text

    settings.API_TOKEN = "metrics-token"
    request = RequestFactory().get("/metrics")
    assert metrics_view(request).status_code == 401
    request = RequestFactory().get(
        "/metrics", HTTP_AUTHORIZATION="Bearer metrics-token"
    )
    response = metrics_view(request)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


def test_the_latency_ring_stays_bounded(make_project, monkeypatch):
    project = make_project("ringed", server="default")
    alias = project_alias(project=project)
    monkeypatch.setattr(statistics, "SEARCH_LATENCY_RING", 5)
    for latency in range(1, 13):
        search_stat_record(alias=alias, latency_ms=float(latency), mode="keyword")

    metrics = project_metrics(project=project)
    assert metrics.queries_served == 12 and metrics.latency_samples == 5
    # The five most recent latencies remain: 8 to 12.
    assert metrics.search_latency_p50_ms == 10.0


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
