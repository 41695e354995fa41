"""Named files alone, and a refresh of what changed: the fast path after an edit."""

import os
from pathlib import Path

import pytest

from indexing.exceptions import RepositoryPathInvalid, UnknownRepository
from indexing.models import CodeChunk, CodeFile
from indexing.services import repositories_refresh, repository_index
from registry.services import project_alias
from search.grep import code_grep
from search.navigation import symbol_find


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    _write(root, ".gitignore", "build/\n")
    _write(root, "a.py", "def alpha():\n    return 1\n")
    _write(root, "c.py", "def gamma():\n    return 3\n")
    _write(root, "d.py", "def delta():\n    return 4\n")
    return root


@pytest.fixture
def indexed(project_factory, repo):
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    return project


def _indexed_at(project, path):
    return (
        CodeFile.objects.using(project_alias(project=project))
        .get(relative_path=path)
        .indexed_at
    )


def test_named_files_are_indexed_removed_or_refused_and_nothing_else_is_read(
    indexed, repo
):
    untouched = _indexed_at(indexed, "d.py")
    _write(repo, "a.py", "def alpha_renamed():\n    return 1\n")
    _write(repo, "b.py", "def beta():\n    return 2\n")
    (repo / "c.py").unlink()
    _write(repo, "build/out.py", "def built():\n    return 0\n")
    # d.py changes too, but is not named: it waits for a full run.
    _write(repo, "d.py", "def delta_changed():\n    return 4\n")

    summary = repository_index(
        project=indexed,
        repo_path=str(repo),
        embed=False,
        paths=["a.py", str(repo / "b.py"), "c.py", "build/out.py", "./a.py"],
    )

    assert (summary.files_total, summary.files_indexed, summary.files_deleted) == (
        2,
        2,
        1,
    )
    assert summary.paths_refused == {"build/out.py": "ignored"}
    assert [s.file_path for s in symbol_find(project=indexed, name="beta").symbols] == [
        "b.py"
    ]
    assert symbol_find(project=indexed, name="alpha").symbols == []
    assert code_grep(project=indexed, pattern="gamma").files == []
    assert symbol_find(project=indexed, name="delta").symbols
    assert _indexed_at(indexed, "d.py") == untouched
    alias = project_alias(project=indexed)
    assert not CodeChunk.objects.using(alias).filter(relative_path="c.py").exists()


def test_a_file_that_became_ignored_leaves_the_index(indexed, repo):
    _write(repo, ".gitignore", "build/\nd.py\n")
    summary = repository_index(
        project=indexed, repo_path=str(repo), embed=False, paths=["d.py"]
    )
    assert summary.paths_refused == {"d.py": "ignored"}
    assert summary.files_deleted == 1
    assert symbol_find(project=indexed, name="delta").symbols == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside.py", "outside the repository"),
        ("/etc/passwd", "outside the repository"),
        (".", "the repository itself"),
        ("", "not a usable file path"),
        ("a\x00.py", "not a usable file path"),
    ],
)
def test_paths_outside_the_repository_are_refused(indexed, repo, path, message):
    with pytest.raises(RepositoryPathInvalid, match=message):
        repository_index(
            project=indexed, repo_path=str(repo), embed=False, paths=[path]
        )


def test_a_refresh_updates_what_changed_and_says_so(indexed, repo, tmp_path):
    [nothing] = repositories_refresh(project=indexed)
    assert (nothing.files_indexed, nothing.files_deleted) == (0, 0)
    assert nothing.files_unchanged == 4  # with .gitignore
    _write(repo, "c.py", "def gamma_two():\n    return 3\n")
    [changed] = repositories_refresh(project=indexed)
    assert (changed.files_indexed, changed.chunks_embedded) == (1, 1)
    assert symbol_find(project=indexed, name="gamma_two").symbols

    other = tmp_path / "other"
    _write(other, "z.py", "def zeta():\n    return 26\n")
    repository_index(project=indexed, repo_path=str(other), embed=False)
    with pytest.raises(RepositoryPathInvalid, match="2 repositories"):
        repositories_refresh(project=indexed, paths=["z.py"])
    _write(other, "z.py", "def zeta_two():\n    return 26\n")
    [picked] = repositories_refresh(project=indexed, paths=[str(other / "z.py")])
    assert picked.repository_path == os.path.realpath(other)
    assert symbol_find(project=indexed, name="zeta_two").symbols
    [named] = repositories_refresh(project=indexed, repository="other")
    assert named.files_unchanged == 1
    with pytest.raises(UnknownRepository, match="No repository 'nope'"):
        repositories_refresh(project=indexed, repository="nope")


def test_a_project_without_repositories_is_told_to_index_first(project_factory):
    with pytest.raises(UnknownRepository, match="no indexed repository"):
        repositories_refresh(project=project_factory())


def test_the_refresh_command_names_what_changed(indexed, repo):
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    _write(repo, "a.py", "def alpha_three():\n    return 3\n")
    out = StringIO()
    call_command("refresh", "a.py", "build/x.py", "--project", indexed.name, stdout=out)
    text = out.getvalue()
    assert "1 re-indexed, 0 removed" in text
    assert "not indexed: build/x.py" not in text  # missing, not refused
    _write(repo, "build/x.py", "x = 1\n")
    out = StringIO()
    call_command(
        "refresh", "build/x.py", "--project", indexed.name, "--json", stdout=out
    )
    [summary] = json.loads(out.getvalue())["repositories"]
    assert summary["paths_refused"] == {"build/x.py": "ignored"}
    with pytest.raises(CommandError, match="none of the indexed repositories"):
        call_command("refresh", "/etc/passwd", "--project", indexed.name)


def test_a_refresh_embeds_what_it_wrote_not_the_backlog(indexed, repo):
    # `indexed` stored keywords only: three files' chunks wait for vectors.
    alias = project_alias(project=indexed)
    waiting = CodeChunk.objects.using(alias).filter(embedding__isnull=True).count()
    assert waiting == 4
    _write(repo, "a.py", "def alpha_embedded():\n    return 1\n")
    [summary] = repositories_refresh(project=indexed)
    assert (summary.files_indexed, summary.chunks_embedded) == (1, 1)
    still = CodeChunk.objects.using(alias).filter(embedding__isnull=True)
    assert sorted(still.values_list("relative_path", flat=True)) == [
        ".gitignore",
        "c.py",
        "d.py",
    ]
    # A full index run takes the backlog.
    full = repository_index(project=indexed, repo_path=str(repo))
    assert full.chunks_embedded == 3 and not still.exists()
