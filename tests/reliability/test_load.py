"""A short run of bench/load.py: searches and indexing on one project at once."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.load import load_run
from indexing.services import repository_index

ROOT = Path(__file__).resolve().parents[2]


def test_parallel_searches_during_reindexing_have_no_errors_or_deadlocks(
    project_factory, tmp_path
):
    repo = tmp_path / "repo"
    for app in ("search",):
        shutil.copytree(ROOT / app, repo / app, ignore=shutil.ignore_patterns("*.pyc"))
    project = project_factory()
    repository_index(project=project, repo_path=str(repo))

    report = load_run(
        project=project, repo_path=str(repo), seconds=5, clients=8, stall_seconds=30
    )

    assert report.errors == 0, report.messages
    assert report.deadlocks == 0, report.stalled
    assert report.queries > 8
    assert report.jobs_completed >= 1 and report.jobs_failed == 0
    assert any(line.startswith("queries:") for line in report.lines())
