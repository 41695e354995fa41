"""The real `manage.py watch` process keeps a real git repository's index fresh.

The watcher is a separate process on the test's embedded PostgreSQL and
registry, so what the test writes must be committed (project_factory is
transactional) and what the watcher writes is read back with the ordinary
selectors, polled until it shows or a deadline passes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections

from indexing.freshness import watcher_lock_key
from indexing.models import CodeFile, CodeSymbol, Repository
from indexing.services import repository_index
from registry.services import project_alias
from search.navigation import symbol_find
from search.selectors import chunk_search

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0


def function_source(name: str, doc: str = "Return the answer.") -> str:
    return textwrap.dedent(f'''
        def {name}(value):
            """{doc}"""
            return value + 1
        ''')


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=watch@test", "-c", "user.name=watch", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def git_repository(root: Path) -> Path:
    """Write a small repository on `main` and commit it."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "pkg").mkdir()
    (root / "pkg" / "alpha.py").write_text(function_source("alpha_original"))
    (root / "pkg" / "beta.py").write_text(function_source("beta_doomed"))
    (root / "README.md").write_text("# Watched\n")
    (root / ".gitignore").write_text("build/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def watcher_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("CODEBASE_MCP", "PATH", "HOME", "LANG", "LC_"))
    }
    env["REGISTRY_DATABASE_NAME"] = connections["default"].settings_dict["NAME"]
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Watcher:
    """A `manage.py watch` process whose stdout and stderr lines are collected."""

    def __init__(self, *args: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "watch", *args],
            env={**watcher_env(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in (
            (self.process.stdout, self.out),
            (self.process.stderr, self.err),
        ):
            threading.Thread(
                target=self._collect, args=(stream, lines), daemon=True
            ).start()

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.out if text in line]

    def wait_line(self, text: str, *, count: int = 1) -> None:
        wait_until(
            lambda: len(self.lines_with(text)) >= count,
            what=f"{count} output line(s) with {text!r}",
            watcher=self,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=10)


def wait_until(
    predicate: Callable[[], object], *, what: str, watcher: Watcher | None = None
) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    said = "" if watcher is None else f"\nstdout: {watcher.out}\nstderr: {watcher.err}"
    raise AssertionError(f"timed out waiting for {what}{said}")


@pytest.fixture
def watched(project_factory, tmp_path) -> Iterator[tuple]:
    """A project with an indexed git repository and a watcher of it, started."""
    project = project_factory()
    repo = git_repository(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo), embed=False)
    connections.close_all()
    watcher = Watcher("--project", project.name)
    try:
        watcher.wait_line("catch-up")
        yield project, repo.resolve(), watcher
    finally:
        watcher.stop(signal.SIGKILL)


def defined(project, name: str) -> list[str]:
    """Return the files that define `name`, as navigation sees them now."""
    found = symbol_find(project=project, name=name)
    return sorted(hit.file_path for hit in found.symbols if hit.name == name)


def keyword_paths(project, query: str, mode: str = "keyword") -> list[str]:
    response = chunk_search(project=project, query=query, mode=mode, limit=5)
    return [result.file_path for result in response.results]


def indexed_paths(project, repo: Path) -> list[str]:
    alias = project_alias(project=project)
    return sorted(
        CodeFile.objects.using(alias)
        .filter(repository__path=str(repo))
        .values_list("relative_path", flat=True)
    )


def disk_paths(repo: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return sorted(path for path in listed if (repo / path).is_file())


def test_edit_create_delete_rename_and_branch_switch_become_searchable(watched):
    project, repo, watcher = watched

    (repo / "pkg" / "alpha.py").write_text(
        function_source("alpha_edited", "Compute the quarterly invoice total.")
    )
    wait_until(
        lambda: defined(project, "alpha_edited") == ["pkg/alpha.py"], what="edit"
    )
    assert defined(project, "alpha_original") == []
    assert keyword_paths(project, "alpha_edited") == ["pkg/alpha.py"]
    wait_until(
        lambda: (
            "pkg/alpha.py"
            in keyword_paths(project, "quarterly invoice total", "semantic")[:1]
        ),
        what="the edit found semantically",
    )

    (repo / "pkg" / "gamma.py").write_text(function_source("gamma_created"))
    wait_until(
        lambda: defined(project, "gamma_created") == ["pkg/gamma.py"], what="create"
    )

    (repo / "pkg" / "beta.py").unlink()
    wait_until(lambda: defined(project, "beta_doomed") == [], what="delete")

    # An editor's atomic save and a plain rename both end as one path.
    (repo / "pkg" / "gamma.py").rename(repo / "pkg" / "delta.py")
    wait_until(
        lambda: defined(project, "gamma_created") == ["pkg/delta.py"], what="rename"
    )
    wait_until(
        lambda: indexed_paths(project, repo) == disk_paths(repo), what="no stale files"
    )

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "pkg" / "alpha.py").write_text(function_source("alpha_on_feature"))
    (repo / "feature").mkdir()
    for n in range(20):
        (repo / "feature" / f"part_{n}.py").write_text(
            function_source(f"feature_part_{n}")
        )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    wait_until(
        lambda: defined(project, "feature_part_19") == ["feature/part_19.py"],
        what="feature",
    )

    git(repo, "checkout", "-q", "main")
    wait_until(
        lambda: defined(project, "alpha_edited") == ["pkg/alpha.py"],
        what="back on main",
    )
    wait_until(
        lambda: defined(project, "feature_part_0") == [], what="feature files gone"
    )
    assert defined(project, "alpha_on_feature") == []
    wait_until(
        lambda: indexed_paths(project, repo) == disk_paths(repo), what="main fresh"
    )
    assert watcher.lines_with("branch switch"), watcher.out

    git(repo, "checkout", "-q", "feature")
    wait_until(
        lambda: defined(project, "alpha_on_feature") == ["pkg/alpha.py"],
        what="feature again",
    )
    wait_until(
        lambda: indexed_paths(project, repo) == disk_paths(repo), what="feature fresh"
    )
    assert watcher.err == []


def test_a_save_storm_is_indexed_once(watched):
    project, repo, watcher = watched
    target = repo / "pkg" / "storm.py"
    for n in range(200):
        target.write_text(function_source(f"storm_version_{n}"))
    wait_until(
        lambda: defined(project, "storm_version_199") == ["pkg/storm.py"], what="storm"
    )
    # The batch's line comes after its commit and its embedding (the first
    # loads the model, seconds on a loaded machine), so wait for it first.
    watcher.wait_line("storm.py")
    time.sleep(1.0)  # a second batch of the storm, if any, would show by now
    assert len(watcher.lines_with("storm.py")) == 1, watcher.out
    assert defined(project, "storm_version_198") == []


def test_ignored_and_noisy_paths_are_not_indexed(watched):
    project, repo, watcher = watched
    (repo / "build").mkdir()
    (repo / "build" / "generated.py").write_text(function_source("built_not_indexed"))
    (repo / "pkg" / "__pycache__").mkdir()
    (repo / "pkg" / "__pycache__" / "alpha.cpython-311.pyc").write_bytes(b"\0\1")
    (repo / "pkg" / "epsilon.py").write_text(function_source("epsilon_indexed"))
    wait_until(
        lambda: defined(project, "epsilon_indexed") == ["pkg/epsilon.py"],
        what="epsilon",
    )
    time.sleep(0.5)
    assert defined(project, "built_not_indexed") == []
    assert "build/generated.py" not in indexed_paths(project, repo)


def test_killed_mid_batch_then_restarted_catches_up(watched):
    project, repo, watcher = watched
    (repo / "many").mkdir()
    for n in range(120):
        (repo / "many" / f"m_{n:03}.py").write_text(function_source(f"many_{n}"))
    wait_until(lambda: defined(project, "many_0"), what="the batch to start")
    watcher.stop(signal.SIGKILL)

    for n in range(0, 120, 10):
        (repo / "many" / f"m_{n:03}.py").unlink()
    for n in range(5, 120, 10):
        (repo / "many" / f"m_{n:03}.py").write_text(function_source(f"renamed_{n}"))

    again = Watcher("--project", project.name)
    try:
        again.wait_line("catch-up")
        assert indexed_paths(project, repo) == disk_paths(repo)
        alias = project_alias(project=project)
        rows = Counter(
            CodeFile.objects.using(alias).values_list("relative_path", flat=True)
        )
        assert set(rows.values()) == {1}
        names = Counter(
            CodeSymbol.objects.using(alias)
            .filter(relative_path__startswith="many/")
            .values_list("name", flat=True)
        )
        expected = {
            (f"renamed_{n}" if n % 10 == 5 else f"many_{n}")
            for n in range(120)
            if n % 10
        }
        assert set(names) == expected
        assert set(names.values()) == {1}
    finally:
        again.stop(signal.SIGKILL)


def test_a_second_watcher_keeps_out_and_the_first_releases_its_lock(watched):
    project, repo, watcher = watched
    second = Watcher("--project", project.name)
    assert second.process.wait(timeout=30) != 0
    assert any("already watched by another watcher" in line for line in second.err)

    assert watch_locks(project, repo) == 1
    assert watcher.stop(signal.SIGTERM) == 0
    assert watcher.err == []
    assert watch_locks(project, repo) == 0


def watch_locks(project, repo: Path) -> int:
    """Return how many sessions hold the watch lock of `repo`, as pg_locks says."""
    alias = project_alias(project=project)
    with connections[alias].cursor() as cursor:
        # A bigint key is split: classid holds its high half, objid its low.
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND objsubid = 1 AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            [watcher_lock_key(root=str(repo))],
        )
        return cursor.fetchone()[0]


def test_bad_paths_are_refused_and_the_rest_is_served(project_factory, tmp_path):
    project = project_factory()
    repo = git_repository(tmp_path / "repo")
    (repo / "pkg" / "up").symlink_to(repo / "pkg")
    (repo / "pkg" / "loop").symlink_to("loop")
    other = git_repository(tmp_path / "other")
    watcher = Watcher("--project", project.name, "/etc", str(repo), str(other))
    try:
        watcher.wait_line("catch-up", count=2)
        assert any("/etc" in line and "never indexed" in line for line in watcher.err)
        assert any("could not be read" in line for line in watcher.err), watcher.err
        shutil.rmtree(other)
        wait_until(
            lambda: any("no longer exists" in line for line in watcher.err),
            what="the deleted repository reported",
            watcher=watcher,
        )
        (repo / "pkg" / "zeta.py").write_text(function_source("zeta_after_delete"))
        wait_until(
            lambda: defined(project, "zeta_after_delete") == ["pkg/zeta.py"],
            what="zeta",
        )
        assert watcher.process.poll() is None
    finally:
        watcher.stop(signal.SIGKILL)


def test_outside_the_allowed_roots_alone_exits_non_zero(project_factory):
    project = project_factory()
    watcher = Watcher("--project", project.name, "/etc")
    assert watcher.process.wait(timeout=30) != 0
    assert any("never indexed" in line for line in watcher.err), watcher.err


def test_a_worktree_s_head_is_watched_where_git_keeps_it(project_factory, tmp_path):
    main = git_repository(tmp_path / "main")
    git(main, "branch", "side")
    worktree = tmp_path / "worktree"
    git(main, "worktree", "add", "-q", str(worktree), "side")
    assert (worktree / ".git").is_file()
    project = project_factory()
    repository_index(project=project, repo_path=str(worktree), embed=False)
    connections.close_all()
    watcher = Watcher("--project", project.name)
    try:
        watcher.wait_line("catch-up")
        # A new branch moves HEAD (kept under main/.git/worktrees/) and
        # changes no file of the worktree.
        git(worktree, "checkout", "-q", "-b", "third")
        watcher.wait_line("HEAD moved")
        alias = project_alias(project=project)
        wait_until(
            lambda: Repository.objects.using(alias).get().indexed_branch == "third",
            what="the new branch recorded",
            watcher=watcher,
        )
    finally:
        watcher.stop(signal.SIGKILL)
