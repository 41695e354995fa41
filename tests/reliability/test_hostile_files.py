"""Hostile and broken files are skipped or indexed safely, counted, never fatal."""

from __future__ import annotations

import os
import socket
import textwrap
import threading
from pathlib import Path

import pytest

import indexing.services as index_services
from indexing.jobs import index_job_create, index_job_run
from indexing.models import CodeChunk, CodeFile, IndexJob
from indexing.services import repository_index
from registry.services import project_alias
from search.selectors import chunk_search

GOOD_SOURCE = textwrap.dedent('''
    def normalise_email(address):
        """Lower-case the domain part of an e-mail address."""
        local, _, domain = address.partition("@")
        return f"{local}@{domain.lower()}"
    ''')
SECRET = "s3cr3t_outside_token_ab12"


def files_are_whole(alias: str) -> None:
    """Assert every stored file has exactly the chunks it claims."""
    for stored in CodeFile.objects.using(alias):
        count = CodeChunk.objects.using(alias).filter(file=stored).count()
        assert count == stored.chunk_count, stored.relative_path


@pytest.fixture
def project(project_factory):
    return project_factory()


def hostile_repo(root: Path) -> Path:
    root.mkdir()
    (root / "good.py").write_text(GOOD_SOURCE)
    (root / "binary.py").write_bytes(b"def f():\n    return 1\n\x00\x01\x02\xff" * 10)
    late_nul = (b"# padding line of text\n" * 500) + b"x = 1\x00\n"
    (root / "late_nul.py").write_bytes(late_nul)
    (root / "latin1.py").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    (root / "truncated_utf8.py").write_bytes("label = 'é'\n".encode()[:-3] + b"\n")
    with open(root / "huge.py", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    (root / "bundle.js").write_text("var a=function(){return 1};" * 20_000)
    (root / "app.min.js").write_text("!function(){}();")
    # Minified code behind a normal-looking head is indexed, in bounded chunks.
    (root / "sneaky.js").write_text(
        "// helper module\n" * 300 + "var x=" + "a+" * 200_000 + "1;\n"
    )
    os.mkfifo(root / "pipe.py")
    (root / "dangling.py").symlink_to(root / "nowhere.py")
    (root / "looks_like_a_file.py").mkdir()
    (root / "looks_like_a_file.py" / "inner.py").write_text("VALUE = 3\n")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / "socket.py"))
    listener.close()
    (root / "empty.py").write_text("")
    (root / "blank.py").write_text("\n\n   \n")
    # File names are bytes; PostgreSQL text is UTF-8.
    with open(os.path.join(os.fsencode(root), b"caf\xe9.py"), "w") as handle:
        handle.write("def latin1_named():\n    return 2\n")
    (root / "new\nline.py").write_text("def newline_named():\n    return 3\n")
    return root


def test_hostile_files_are_counted_in_the_summary_and_the_job(
    project, tmp_path, settings
):
    repo = hostile_repo(tmp_path / "repo")
    job = index_job_create(project=project, repo_path=str(repo))
    job = index_job_run(job_id=job.id)

    assert job.status == IndexJob.Status.COMPLETED, job.error
    assert job.skipped_by_reason == {
        "binary": 2,
        "invalid_name": 1,
        "invalid_utf8": 2,
        "minified": 2,
        "too_large": 1,
        "unreadable": 3,
    }
    assert job.files_skipped == 11
    alias = project_alias(project=project)
    stored = set(CodeFile.objects.using(alias).values_list("relative_path", flat=True))
    assert stored == {
        "good.py",
        "sneaky.js",
        "looks_like_a_file.py/inner.py",
        "empty.py",
        "blank.py",
        "new\nline.py",
    }
    files_are_whole(alias)
    longest = max(
        len(c) for c in CodeChunk.objects.using(alias).values_list("content", flat=True)
    )
    assert longest <= 2 * settings.INDEX_CHUNK_MAX_CHARS
    hits = chunk_search(project=project, query="normalise email domain").results
    assert hits[0].file_path == "good.py"


def walk_then(action):
    """Return a repository_walk that runs `action` after walking, before reading."""
    real_walk = index_services.repository_walk

    def walk(**kwargs):
        result = real_walk(**kwargs)
        action()
        return result

    return walk


def test_a_file_deleted_between_walk_and_read_is_counted_as_vanished(
    project, tmp_path, monkeypatch
):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "good.py").write_text(GOOD_SOURCE)
    (repo / "gone.py").write_text("def soon_gone():\n    return 0\n")
    monkeypatch.setattr(
        index_services, "repository_walk", walk_then((repo / "gone.py").unlink)
    )

    summary = repository_index(project=project, repo_path=str(repo), embed=False)

    assert summary.skipped_by_reason == {"vanished": 1}
    assert (summary.files_indexed, summary.files_skipped) == (1, 1)
    files_are_whole(project_alias(project=project))


def test_a_file_rewritten_between_walk_and_read_is_stored_as_read(
    project, tmp_path, monkeypatch
):
    repo = tmp_path / "repo"
    repo.mkdir()
    target = repo / "moving.py"
    target.write_text("def first_version():\n    return 1\n")

    def rewrite() -> None:
        target.write_text("def second_version_is_longer():\n    return 2 + 2\n")
        os.utime(target, (1_700_000_000, 1_700_000_000))

    monkeypatch.setattr(index_services, "repository_walk", walk_then(rewrite))
    repository_index(project=project, repo_path=str(repo), embed=False)
    monkeypatch.undo()

    alias = project_alias(project=project)
    stored = CodeFile.objects.using(alias).get()
    assert stored.size_bytes == target.stat().st_size
    assert stored.mtime == target.stat().st_mtime
    symbols = set(CodeChunk.objects.using(alias).values_list("symbol", flat=True))
    assert symbols == {"second_version_is_longer"}
    again = repository_index(project=project, repo_path=str(repo), embed=False)
    assert (again.files_unchanged, again.files_indexed) == (1, 0)


@pytest.mark.parametrize("swap", ["symlink_out", "fifo", "directory", "grown"])
def test_a_file_swapped_between_walk_and_read_is_never_followed(
    project, tmp_path, monkeypatch, settings, swap
):
    settings.INDEX_MAX_FILE_BYTES = 100_000
    outside = tmp_path / "outside.py"
    outside.write_text(f"TOKEN = '{SECRET}'\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "good.py").write_text(GOOD_SOURCE)
    target = repo / "swapped.py"
    target.write_text("def innocent():\n    return 1\n")

    def do_swap() -> None:
        target.unlink()
        if swap == "symlink_out":
            target.symlink_to(outside)
        elif swap == "fifo":
            os.mkfifo(target)
        elif swap == "directory":
            target.mkdir()
        else:
            target.write_text(f"# {SECRET}\n" + "x = 1\n" * 50_000)

    monkeypatch.setattr(index_services, "repository_walk", walk_then(do_swap))
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["summary"] = repository_index(
                project=project, repo_path=str(repo), embed=False
            )
        finally:
            from django.db import connections

            connections.close_all()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():
        # Release a reader blocked on the FIFO so the suite can go on.
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(timeout=30)
        pytest.fail("indexing blocked on a file swapped for a FIFO")

    summary = outcome["summary"]
    expected = "too_large" if swap == "grown" else "unreadable"
    assert summary.skipped_by_reason == {expected: 1}
    assert summary.files_indexed == 1
    alias = project_alias(project=project)
    assert not CodeChunk.objects.using(alias).filter(content__contains=SECRET).exists()
    files_are_whole(alias)
