"""How fresh the index is: the commit it reflects, files changed since, a watcher."""

import subprocess
import time
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from indexing.freshness import files_changed_count, watcher_lock_key
from indexing.models import Repository
from indexing.selectors import project_status
from indexing.services import repositories_refresh, repository_index
from mcp_bridge.server import server
from registry.databases import project_database_params
from registry.services import project_alias
from search.grep import code_grep
from search.navigation import symbol_find
from search.selectors import chunk_search


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pay.py").write_text("def pay_invoice(amount):\n    return amount\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    return root


@pytest.fixture
def fresh(settings):
    # Recount on every call: the tests change files between calls.
    settings.FRESHNESS_SECONDS = 0.0


def _repository(project):
    [status] = project_status(project=project, with_size=False).repositories
    return status


def test_an_index_run_records_the_commit_and_status_compares_it(
    project_factory, repo, fresh
):
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    first = _git(repo, "rev-parse", "HEAD")
    status = _repository(project)
    assert (status.indexed_commit, status.indexed_branch) == (first, "main")
    assert (status.head_commit, status.head_branch) == (first, "main")
    assert status.files_changed == 0 and status.vectors_missing == 1

    _git(repo, "checkout", "-q", "-b", "feature")
    (repo / "pay.py").write_text("def pay_twice(amount):\n    return 2 * amount\n")
    _git(repo, "commit", "-q", "-am", "second")
    second = _git(repo, "rev-parse", "HEAD")
    status = _repository(project)
    assert (status.indexed_commit, status.head_commit) == (first, second)
    assert status.head_branch == "feature" and status.files_changed == 1

    # A branch switch is an ordinary incremental run.
    [summary] = repositories_refresh(project=project)
    assert (summary.git_commit, summary.git_branch) == (second, "feature")
    assert summary.files_indexed == 1
    status = _repository(project)
    assert status.indexed_commit == second and status.files_changed == 0
    assert status.vectors_missing == 0

    _git(repo, "checkout", "-q", "--detach", "HEAD")
    repository_index(project=project, repo_path=str(repo), embed=False)
    alias = project_alias(project=project)
    assert Repository.objects.using(alias).get().indexed_branch == ""
    assert _repository(project).indexed_branch is None


def test_outside_git_there_is_no_commit(project_factory, tmp_path, fresh):
    root = tmp_path / "plain"
    root.mkdir()
    (root / "a.py").write_text("x = 1\n")
    project = project_factory()
    repository_index(project=project, repo_path=str(root), embed=False)
    status = _repository(project)
    assert (status.indexed_commit, status.head_commit) == (None, None)


def test_answers_say_when_indexed_files_changed_on_disk(project_factory, repo, fresh):
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    assert not any(
        "changed on disk" in n
        for n in symbol_find(project=project, name="pay_invoice").notes
    )
    (repo / "pay.py").write_text("def pay_invoice(amount):\n    return amount + 1\n")
    note = "1 indexed file changed on disk since indexing"
    # An answer does not wait for the count: a later one carries it.
    deadline = time.monotonic() + 10
    while not any(
        note in n for n in symbol_find(project=project, name="pay_invoice").notes
    ):
        assert time.monotonic() < deadline, "no staleness note arrived"
        time.sleep(0.05)
    assert any(note in n for n in code_grep(project=project, pattern="pay_").notes)
    searched = chunk_search(project=project, query="pay_invoice", mode="keyword")
    assert any(note in n for n in searched.notes)
    # An index run drops the count; the next answers go by a new one.
    repositories_refresh(project=project)
    assert files_changed_count(alias=project_alias(project=project)) == {}
    assert not any(
        "changed on disk" in n
        for n in symbol_find(project=project, name="pay_invoice").notes
    )


def test_status_says_whether_a_watcher_holds_the_repository(
    project_factory, repo, fresh
):
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    assert _repository(project).watcher_running is False
    root = Repository.objects.using(project_alias(project=project)).get().path
    with psycopg.connect(
        **project_database_params(database_name=project.database_name)
    ) as watcher:
        watcher.execute("SELECT pg_advisory_lock(%s)", [watcher_lock_key(root=root)])
        assert _repository(project).watcher_running is True

        async def status_text():
            async with Client(server) as client:
                result = await client.call_tool(
                    "get_project_status", {"project_id": project.name}
                )
                return result.content[0].text, result.structured_content

        text, structured = anyio.run(status_text)
        assert (
            "; watched" in text
            and f"at {_git(repo, 'rev-parse', 'HEAD')[:12]} (main)" in text
        )
        assert structured["repositories"][0]["watcher_running"] is True
    assert _repository(project).watcher_running is False
