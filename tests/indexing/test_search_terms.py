"""The term statistics keyword search ranks by stay exact as chunks come and go."""

import time

from indexing.services import repository_index
from registry.databases import project_connection
from registry.services import project_alias
from tests.indexing.test_services import make_repo


def term_stats(alias: str) -> tuple[dict, dict, tuple, tuple]:
    """Return (kept counts, recounted counts, kept totals, recounted totals)."""
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT lexeme, chunks FROM search_terms")
        kept = dict(cursor.fetchall())
        cursor.execute(
            "SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM code_chunks')"
        )
        recounted = dict(cursor.fetchall())
        cursor.execute("SELECT chunks, lexemes FROM search_term_totals")
        kept_totals = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), coalesce(sum(length(search_vector)), 0) FROM code_chunks"
        )
        recounted_totals = cursor.fetchone()
    return kept, recounted, kept_totals, recounted_totals


def test_counts_follow_indexing_changes_and_deletions(project_factory, tmp_path):
    project = project_factory()
    alias = project_alias(project=project)
    repo = make_repo(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo), embed=False)
    kept, recounted, kept_totals, recounted_totals = term_stats(alias)
    assert kept == recounted and "retri" in kept
    assert kept_totals == recounted_totals and kept_totals[0] > 0

    time.sleep(0.01)
    (repo / "pkg" / "net.py").write_text(
        "def frobnicate_widget(widget):\n    return widget.frobnicate()\n"
    )
    (repo / "README.md").unlink()
    repository_index(project=project, repo_path=str(repo), embed=False)
    kept, recounted, kept_totals, recounted_totals = term_stats(alias)
    assert kept == recounted
    assert kept_totals == recounted_totals
    assert kept["frobnic"] == 1
    # Words only the replaced and deleted files held are gone, not left at 0.
    assert "retri" not in kept and "tini" not in kept
    assert min(kept.values()) > 0


def test_two_repositories_indexed_at_once_keep_exact_counts(project_factory, tmp_path):
    import threading

    from django.db import connections

    project = project_factory()
    alias = project_alias(project=project)
    repos = []
    for name in ("left", "right"):
        root = tmp_path / name
        root.mkdir()
        # Shared words in both (the rows both writers upsert), and many files
        # so that their write batches interleave.
        for n in range(120):
            (root / f"m{n}.py").write_text(
                f"def shared_{name}_{n}(value):\n    return common_word(value) + {n}\n"
            )
        repos.append(root)
    errors: list[BaseException] = []

    def index(root):
        try:
            repository_index(project=project, repo_path=str(root), embed=False)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=index, args=(root,)) for root in repos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    kept, recounted, kept_totals, recounted_totals = term_stats(alias)
    assert kept == recounted and kept["common"] == 240
    assert kept_totals == recounted_totals == (240, recounted_totals[1])
