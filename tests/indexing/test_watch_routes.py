"""Which file events a watcher drops, re-indexes alone, or turns into a scan."""

from watchfiles import Change

from indexing.watching import _event_route

FULL = "full"


def route(root, relative, change=Change.modified):
    why = _event_route(root=str(root), relative=relative, change=change)
    return why if why in (None, "file") else FULL


def test_git_internals_are_dropped_but_head_and_its_branch_rescan(tmp_path):
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert route(tmp_path, ".git/HEAD") == FULL
    assert route(tmp_path, ".git/refs/heads/main") == FULL
    assert route(tmp_path, ".git/refs/heads/other") is None
    assert route(tmp_path, ".git/HEAD.lock") is None
    assert route(tmp_path, ".git/index") is None
    assert route(tmp_path, ".git/objects/ab/cdef") is None
    assert route(tmp_path, ".git/info/exclude") == FULL


def test_noise_is_dropped_and_rules_or_new_directories_rescan(tmp_path):
    (tmp_path / "pkg").mkdir()
    assert route(tmp_path, "pkg/app.py") == "file"
    assert route(tmp_path, "pkg/gone.py", Change.deleted) == "file"
    assert route(tmp_path, "pkg/__pycache__/app.cpython-311.pyc") is None
    assert route(tmp_path, "pkg/.app.py.swp") is None
    assert route(tmp_path, "pkg/app.py~") is None
    assert route(tmp_path, "pkg/4913") is None
    assert route(tmp_path, "pkg/.gitignore") == FULL
    assert route(tmp_path, ".codebase-mcp/ignore") == FULL
    assert route(tmp_path, "pkg", Change.added) == FULL
    assert route(tmp_path, "pkg", Change.modified) is None
