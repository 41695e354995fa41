"""Parsing in worker processes: same rows as in the indexer, in the same order."""

import os
import signal
from pathlib import Path

from django.test import override_settings

from indexing.chunking import language_for_path
from indexing.models import CodeChunk, CodeFile
from indexing.parsing import ParsePipeline, ParseTask, file_parse
from indexing.services import repository_index
from registry.services import project_alias

ROOT = Path(__file__).resolve().parents[2]
# Real files of this repository, several languages of it.
SOURCES = sorted(
    path
    for folder in ("indexing", "search", "registry")
    for path in (ROOT / folder).rglob("*.py")
    if path.stat().st_size > 200
)[:40]


def _tasks() -> list[ParseTask]:
    return [
        ParseTask(
            relative_path=str(path.relative_to(ROOT)),
            text=path.read_text(),
            language=language_for_path(path.name) or "text",
            max_chars=1500,
        )
        for path in SOURCES
    ]


def _run(pipeline: ParsePipeline, tasks: list[ParseTask], *, kill_after: int = -1):
    out = []
    try:
        for number, task in enumerate(tasks):
            pipeline.put(number, task)
            if number == kill_after:
                for process in list(pipeline._executor._processes.values()):
                    os.kill(process.pid, signal.SIGKILL)
            out.extend(pipeline.ready())
        out.extend(pipeline.drain())
    finally:
        pipeline.close()
    return out


def test_worker_processes_give_the_indexer_own_results_in_order():
    tasks = _tasks()
    assert len(tasks) >= 30
    expected = [file_parse(task=task) for task in tasks]
    pipeline = ParsePipeline(workers=2, start_after=5)
    got = _run(pipeline, tasks)
    assert [number for number, _ in got] == list(range(len(tasks)))
    assert [parsed for _, parsed in got] == expected
    assert sum(len(parsed.rows) for parsed in expected) > 100
    assert sum(len(parsed.reference_rows) for parsed in expected) > 100


def test_a_killed_worker_costs_nothing_the_rest_is_parsed_here():
    tasks = _tasks()
    expected = [file_parse(task=task) for task in tasks]
    pipeline = ParsePipeline(workers=2, start_after=2)
    got = _run(pipeline, tasks, kill_after=12)
    assert [number for number, _ in got] == list(range(len(tasks)))
    assert [parsed for _, parsed in got] == expected
    assert pipeline.workers == 0  # switched to parsing in the indexer


def test_small_runs_start_no_process():
    pipeline = ParsePipeline(workers=2, start_after=100)
    got = _run(pipeline, _tasks()[:10])
    assert len(got) == 10
    assert pipeline._executor is None


def _stored(alias: str) -> dict:
    return {
        "chunks": sorted(
            CodeChunk.objects.using(alias).values_list(
                "relative_path",
                "start_line",
                "end_line",
                "content_sha256",
                "header_terms",
                "body_terms",
            )
        ),
        "files": sorted(
            CodeFile.objects.using(alias).values_list(
                "relative_path", "sha256", "chunk_count"
            )
        ),
    }


def _symbols(alias: str) -> list[tuple]:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT relative_path, qualified_name, kind, start_line FROM code_symbols "
            "ORDER BY 1, 2, 3, 4"
        )
        symbols = cursor.fetchall()
        cursor.execute(
            "SELECT f.relative_path, r.name, r.lines, r.kinds FROM code_references r "
            "JOIN code_files f ON f.id = r.file_id ORDER BY 1, 2, 3"
        )
        return symbols + cursor.fetchall()


def test_a_repository_stored_by_workers_equals_one_stored_here(
    project_factory, tmp_path
):
    repo = tmp_path / "repo"
    for path in SOURCES:
        target = repo / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    here, workers = project_factory(), project_factory()
    with override_settings(INDEX_PARSE_WORKERS=0):
        repository_index(project=here, repo_path=str(repo), embed=False)
    with override_settings(INDEX_PARSE_WORKERS=2, INDEX_PARSE_PROCESS_AFTER_FILES=3):
        summary = repository_index(project=workers, repo_path=str(repo), embed=False)
    assert summary.files_indexed == len(SOURCES)
    first, second = project_alias(project=here), project_alias(project=workers)
    assert _stored(first) == _stored(second)
    assert _symbols(first) == _symbols(second)
    assert len(_stored(first)["chunks"]) > 100
