"""Tests for the repository walker, run against real files in a temporary tree."""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

import pytest

from indexing.walking import (
    WalkedFile,
    WalkResult,
    file_is_binary,
    path_examine,
    repository_walk,
)

PYTHON_SOURCE = "def answer() -> int:\n    return 42\n"


def write(root: Path, relative: str, content: str | bytes = PYTHON_SOURCE) -> Path:
    """Create the file `relative` under `root`, with any missing parents."""
    path = root.joinpath(*relative.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def walk(root: Path, **options: object) -> WalkResult:
    """Walk `root` with the given options; check path_examine agrees on every path."""
    result = repository_walk(root=str(root), **options)  # type: ignore[arg-type]
    examine_agrees(root, result, **options)
    return result


def examine_agrees(root: Path, result: WalkResult, **options: object) -> None:
    """Assert that each path under `root`, examined alone, is selected as the walk chose.

    Every file, link and special file is asked, those inside `.git` and
    ignored or vendored directories too: the walk's trees are the cases.
    """
    selected = {walked.relative_path: walked for walked in result.files}
    asked = 0
    for directory, names, files in os.walk(root, followlinks=False):
        for name in files + [
            n for n in names if os.path.islink(os.path.join(directory, n))
        ]:
            relative = Path(directory, name).relative_to(root).as_posix()
            outcome = path_examine(root=str(root), relative_path=relative, **options)  # type: ignore[arg-type]
            asked += 1
            if relative in selected:
                assert outcome == selected[relative], relative
            else:
                assert not isinstance(outcome, WalkedFile), relative
    assert asked >= len(selected)


def relative_paths(result: WalkResult) -> list[str]:
    """Return the relative paths of the walked files, in result order."""
    return [walked.relative_path for walked in result.files]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Return an empty repository root with room for an "outside" sibling."""
    root = tmp_path / "repo"
    root.mkdir()
    return root


# --- ignore rules -------------------------------------------------------------


def test_nested_gitignore_applies_relative_to_its_directory(repo: Path) -> None:
    write(repo, ".gitignore", "*.log\n")
    write(repo, "sub/.gitignore", "!important.log\n/local.txt\n")
    for relative in (
        "app.log",
        "important.log",
        "local.txt",
        "sub/debug.log",
        "sub/important.log",
        "sub/local.txt",
        "sub/deeper/important.log",
        "sub/deeper/local.txt",
    ):
        write(repo, relative, "text\n")

    result = walk(repo)

    assert relative_paths(result) == [
        ".gitignore",
        "local.txt",
        "sub/.gitignore",
        "sub/deeper/important.log",
        "sub/deeper/local.txt",
        "sub/important.log",
    ]
    assert result.skipped == {"ignored": 4}


def test_deeper_gitignore_wins_over_shallower_negation(repo: Path) -> None:
    write(repo, ".gitignore", "!sub/secret.txt\n")
    write(repo, "sub/.gitignore", "secret.txt\n")
    write(repo, "sub/secret.txt", "s3cr3t\n")

    assert "sub/secret.txt" not in relative_paths(walk(repo))


def test_last_matching_pattern_in_a_file_wins(repo: Path) -> None:
    write(repo, ".gitignore", "!keep.txt\n*.txt\n!also_keep.txt\n")
    for relative in ("keep.txt", "drop.txt", "also_keep.txt"):
        write(repo, relative, "text\n")

    assert relative_paths(walk(repo)) == [".gitignore", "also_keep.txt"]


def test_directory_only_pattern_skips_directories_not_files(repo: Path) -> None:
    write(repo, ".gitignore", "cache/\n")
    write(repo, "cache/a.py")
    write(repo, "src/cache/b.py")
    write(repo, "other/cache", "a plain file named cache\n")

    result = walk(repo)

    assert relative_paths(result) == [".gitignore", "other/cache"]
    # One count per pruned directory, not per file inside it.
    assert result.skipped == {"ignored": 2}


def test_anchored_pattern_only_matches_at_its_own_level(repo: Path) -> None:
    write(repo, ".gitignore", "/out\n")
    write(repo, "sub/.gitignore", "/notes.txt\n")
    write(repo, "out/a.py")
    write(repo, "src/out/b.py")
    write(repo, "notes.txt", "root notes\n")
    write(repo, "sub/notes.txt", "sub notes\n")
    write(repo, "sub/deeper/notes.txt", "deeper notes\n")

    assert relative_paths(walk(repo)) == [
        ".gitignore",
        "notes.txt",
        "src/out/b.py",
        "sub/.gitignore",
        "sub/deeper/notes.txt",
    ]


def test_pattern_with_slash_in_nested_gitignore_is_relative_to_it(
    repo: Path,
) -> None:
    write(repo, "pkg/.gitignore", "docs/*.tmp\n")
    write(repo, "pkg/docs/a.tmp", "x\n")
    write(repo, "docs/a.tmp", "x\n")

    assert relative_paths(walk(repo)) == ["docs/a.tmp", "pkg/.gitignore"]


def test_files_inside_an_ignored_directory_cannot_be_reincluded(repo: Path) -> None:
    # Same as git: "!logs/keep.txt" cannot undo the exclusion of logs/, but
    # "data/*" excludes only the children, so one of them can come back.
    write(repo, ".gitignore", "logs/\n!logs/keep.txt\ndata/*\n!data/keep.txt\n")
    write(repo, "logs/keep.txt", "x\n")
    write(repo, "data/keep.txt", "x\n")
    write(repo, "data/drop.txt", "x\n")

    result = walk(repo)

    assert relative_paths(result) == [".gitignore", "data/keep.txt"]
    assert result.skipped == {"ignored": 2}


def test_info_exclude_applies_below_gitignore(repo: Path) -> None:
    write(repo, ".git/info/exclude", "*.tmp\nscratch/\n")
    write(repo, ".git/config", "[core]\n")
    write(repo, ".git/objects/ab/cdef", "blob\n")
    write(repo, ".gitignore", "!keep.tmp\n")
    write(repo, "a.tmp", "x\n")
    write(repo, "keep.tmp", "x\n")
    write(repo, "scratch/x.py")

    result = walk(repo)

    # Nothing under .git is listed or counted.
    assert relative_paths(result) == [".gitignore", "keep.tmp"]
    assert result.skipped == {"ignored": 2}


def test_info_exclude_is_found_through_a_gitdir_file(
    tmp_path: Path, repo: Path
) -> None:
    # Worktrees and submodules keep their git directory elsewhere.
    git_dir = tmp_path / "gitdata"
    write(git_dir, "info/exclude", "*.tmp\n")
    write(repo, ".git", f"gitdir: {os.path.relpath(git_dir, repo)}\n")
    write(repo, "a.tmp", "x\n")
    write(repo, "a.py")

    result = walk(repo)

    assert relative_paths(result) == ["a.py"]
    assert result.skipped == {"ignored": 1}


def test_codebase_mcp_ignore_overrides_gitignore(repo: Path) -> None:
    write(repo, ".codebase-mcp/ignore", "docs/\n!special.gen.py\n")
    write(repo, ".codebase-mcp/notes.txt", "tool state\n")
    write(repo, ".gitignore", "*.gen.py\n")
    write(repo, "docs/guide.md", "# Guide\n")
    write(repo, "other.gen.py")
    write(repo, "special.gen.py")
    write(repo, "main.py")

    result = walk(repo)

    assert relative_paths(result) == [".gitignore", "main.py", "special.gen.py"]
    assert result.skipped == {"ignored": 2}


def test_symlinked_gitignore_is_not_read(tmp_path: Path, repo: Path) -> None:
    # Git does not follow a symlinked .gitignore either.
    outside_rules = write(tmp_path, "outside/rules", "*.py\n")
    (repo / ".gitignore").symlink_to(outside_rules)
    write(repo, "main.py")

    result = walk(repo)

    assert relative_paths(result) == ["main.py"]
    assert result.skipped == {"symlink_outside": 1}


# --- vendored directories and file kinds ---------------------------------------


def test_vendored_directories_are_pruned_and_counted_once_each(repo: Path) -> None:
    write(repo, "node_modules/left-pad/index.js", "module.exports = 1;\n")
    write(repo, "node_modules/other.js", "module.exports = 2;\n")
    write(repo, ".venv/lib/site.py")
    write(repo, "pkg/__pycache__/mod.cpython-311.py")
    write(repo, "build/out.js", "var a = 1;\n")
    write(repo, "vendor/lib.go", "package lib\n")
    write(repo, "env/pyvenv.cfg", "home = /usr/bin\n")
    write(repo, "env/lib/thing.py")
    write(repo, "custom-venv/pyvenv.cfg", "home = /usr/bin\n")
    write(repo, "custom-venv/thing.py")
    write(repo, "pkg.egg-info/PKG-INFO", "Name: pkg\n")
    # Without pyvenv.cfg, env/ is ordinary source.
    write(repo, "src/env/settings.py")
    write(repo, "pkg/mod.py")

    result = walk(repo)

    assert relative_paths(result) == ["pkg/mod.py", "src/env/settings.py"]
    assert result.skipped == {"vendored": 8}


def test_ignore_rules_are_counted_before_vendoring(repo: Path) -> None:
    write(repo, ".gitignore", "node_modules/\n")
    write(repo, "node_modules/a.js", "1;\n")

    assert walk(repo).skipped == {"ignored": 1}


def test_lock_files_are_skipped(repo: Path) -> None:
    for name in (
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "uv.lock",
        "Cargo.lock",
        "go.sum",
    ):
        write(repo, f"deps/{name}", "{}\n")
    write(repo, "deps/go.mod", "module example.com/x\n")
    write(repo, "deps/lock.py")

    result = walk(repo)

    assert relative_paths(result) == ["deps/go.mod", "deps/lock.py"]
    assert result.skipped == {"lock_file": 7}


def test_minified_files_are_skipped_by_name_and_by_content(repo: Path) -> None:
    for name in ("app.min.js", "style.min.css", "app.bundle.js", "app.js.map"):
        write(repo, f"static/{name}", "var a = 1;\n")
    one_long_line = "var a=1;" * 700
    write(repo, "static/vendor.js", one_long_line + "\n")
    # One long line among many ordinary ones is hand-written code.
    write(
        repo,
        "src/table.py",
        "DATA = '" + "x" * 1500 + "'\n" + "value = 1\n" * 200,
    )
    # Prose keeps whole paragraphs on one line.
    paragraph = "This sentence is part of a long unwrapped paragraph. " * 30
    write(repo, "docs/guide.md", f"{paragraph}\n\n{paragraph}\n\n{paragraph}\n")

    result = walk(repo)

    assert relative_paths(result) == ["docs/guide.md", "src/table.py"]
    assert result.skipped == {"minified": 5}


def test_generated_files_are_skipped_by_name_and_by_marker(repo: Path) -> None:
    write(repo, "proto/thing_pb2.py", "x = 1\n")
    write(repo, "proto/thing_pb2_grpc.py", "x = 1\n")
    write(
        repo,
        "api/api.go",
        "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage api\n",
    )
    write(repo, "schema.js", "/**\n * @generated\n */\nexport {};\n")
    write(
        repo,
        "config.py",
        "# This file is autogenerated by a script.\nVALUE = 1\n",
    )
    # Django migrations say "Generated by" but are maintained by hand.
    write(
        repo,
        "app/migrations/0001_initial.py",
        "# Generated by Django 5.0 on 2024-01-01 00:00\nfrom django.db import "
        "migrations\n",
    )
    # Markers count only near the top of the file.
    write(repo, "late.py", "x = 1\n" * 20 + "# DO NOT EDIT below\n")

    result = walk(repo)

    assert relative_paths(result) == ["app/migrations/0001_initial.py", "late.py"]
    assert result.skipped == {"generated": 5}


def test_binary_files_are_skipped_by_extension_and_by_nul_bytes(repo: Path) -> None:
    write(repo, "blob.dat", b"header\x00payload")
    write(repo, "logo.png", "not really an image\n")
    write(repo, "archive.tar.gz", "text but archived\n")
    # Only the first 8 KB are sniffed, as git does.
    write(repo, "late_nul.txt", b"a" * 9000 + b"\x00")
    write(repo, "main.py")

    result = walk(repo)

    assert relative_paths(result) == ["late_nul.txt", "main.py"]
    assert result.skipped == {"binary": 3}


def test_file_is_binary_sniffs_nul_in_first_8_kb() -> None:
    assert file_is_binary(head=b"\x89PNG\r\n\x1a\n\x00\x00")
    assert file_is_binary(head=b"a" * 8191 + b"\x00")
    assert not file_is_binary(head=b"a" * 8192 + b"\x00")
    assert not file_is_binary(head="plain UTF-8 text: héllo\n".encode())
    assert not file_is_binary(head=b"")


def test_size_limit_is_inclusive_and_exceeding_it_is_too_large(repo: Path) -> None:
    write(repo, "fits.txt", "x" * 99 + "\n")
    write(repo, "big.txt", "x" * 100 + "\n")

    result = walk(repo, max_file_bytes=100)

    assert relative_paths(result) == ["fits.txt"]
    assert result.files[0].size == 100
    assert result.skipped == {"too_large": 1}


def test_languages_callback_filters_and_sees_posix_relative_paths(
    repo: Path,
) -> None:
    write(repo, "src/pkg/mod.py")
    write(repo, "src/pkg/data.xyz", "???\n")
    write(repo, "yarn.lock", "lock\n")
    seen: list[str] = []

    def languages(relative_path: str) -> str | None:
        seen.append(relative_path)
        return "python" if relative_path.endswith(".py") else None

    result = repository_walk(root=str(repo), languages=languages)

    assert relative_paths(result) == ["src/pkg/mod.py"]
    assert result.skipped == {"unsupported_type": 1, "lock_file": 1}
    # Name-based rules run first, so lock files never reach the callback.
    assert sorted(seen) == ["src/pkg/data.xyz", "src/pkg/mod.py"]
    examine_agrees(repo, result, languages=languages)


# --- symlinks and unreadable entries --------------------------------------------


def test_symlinks_pointing_outside_the_root_are_not_followed(
    tmp_path: Path, repo: Path
) -> None:
    secret = write(tmp_path, "outside/secret.py", "TOKEN = 'x'\n")
    (repo / "leak.py").symlink_to(secret)
    (repo / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    # A relative link that climbs out of the root is caught too.
    (repo / "sneaky.py").symlink_to(Path("..") / "outside" / "secret.py")
    write(repo, "main.py")

    result = walk(repo)

    assert relative_paths(result) == ["main.py"]
    assert result.skipped == {"symlink_outside": 3}


def test_symlinks_inside_the_root_are_not_followed(repo: Path) -> None:
    write(repo, "src/real.py")
    (repo / "alias.py").symlink_to(repo / "src" / "real.py")
    (repo / "srclink").symlink_to(repo / "src", target_is_directory=True)
    # A link back to the root would loop forever if followed.
    (repo / "src" / "up").symlink_to("..", target_is_directory=True)

    result = walk(repo)

    assert relative_paths(result) == ["src/real.py"]
    assert result.skipped == {"symlink": 3}


def test_symlink_loops_and_dangling_links_are_unreadable(repo: Path) -> None:
    (repo / "a").symlink_to("b")
    (repo / "b").symlink_to("a")
    (repo / "self").symlink_to("self")
    (repo / "dangling.py").symlink_to("missing.py")
    write(repo, "main.py")

    result = walk(repo)

    assert relative_paths(result) == ["main.py"]
    assert result.skipped == {"unreadable": 4}


def test_symlinked_root_keeps_links_inside_it(tmp_path: Path, repo: Path) -> None:
    write(repo, "real.py")
    (repo / "alias.py").symlink_to("real.py")
    root_link = tmp_path / "root-link"
    root_link.symlink_to(repo, target_is_directory=True)

    result = walk(root_link)

    assert relative_paths(result) == ["real.py"]
    assert result.files[0].path == str(root_link / "real.py")
    assert result.skipped == {"symlink": 1}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_skipped_without_blocking(repo: Path) -> None:
    os.mkfifo(repo / "pipe.py")
    write(repo, "main.py")
    outcome: list[WalkResult] = []
    # Opening a FIFO for reading blocks until a writer appears, so a broken
    # walker would hang; the thread turns that into a failure instead.
    worker = threading.Thread(
        target=lambda: outcome.append(walk(repo)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive(), "walking a FIFO blocked"
    assert relative_paths(outcome[0]) == ["main.py"]
    assert outcome[0].skipped == {"unreadable": 1}


def test_file_vanishing_mid_walk_is_unreadable(repo: Path) -> None:
    doomed = write(repo, "doomed.py")
    write(repo, "kept.py")

    def languages(relative_path: str) -> str | None:
        # Runs after the directory is listed and before the file is opened,
        # which is exactly the window in which a file can disappear.
        if relative_path == "doomed.py":
            doomed.unlink()
        return "python"

    result = walk(repo, languages=languages)

    assert relative_paths(result) == ["kept.py"]
    assert result.skipped == {"unreadable": 1}


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root reads files regardless of their mode",
)
def test_permission_denied_file_and_directory_are_unreadable(repo: Path) -> None:
    locked_file = write(repo, "locked.py")
    locked_dir = write(repo, "private/inner.py").parent
    write(repo, "main.py")
    locked_file.chmod(0)
    locked_dir.chmod(0)
    try:
        result = walk(repo)
    finally:
        locked_dir.chmod(0o755)
        locked_file.chmod(0o644)

    assert relative_paths(result) == ["main.py"]
    assert result.skipped == {"unreadable": 2}


# --- result shape and errors ------------------------------------------------------


def test_results_are_sorted_posix_and_describe_each_file(repo: Path) -> None:
    for relative in ("b/z.py", "a.py", "b/a/y.py", "a/b.py", "a-b.py", "A.py"):
        write(repo, relative)

    result = walk(repo)

    expected = sorted(["b/z.py", "a.py", "b/a/y.py", "a/b.py", "a-b.py", "A.py"])
    assert relative_paths(result) == expected
    for walked in result.files:
        assert isinstance(walked, WalkedFile)
        assert os.path.isabs(walked.path)
        assert walked.path == os.path.join(str(repo), *walked.relative_path.split("/"))
        status = os.stat(walked.path)
        assert walked.size == status.st_size
        assert walked.mtime == status.st_mtime
    assert walk(repo) == result


def test_relative_root_gives_absolute_paths(
    monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    write(repo, "src/main.py")
    monkeypatch.chdir(repo.parent)

    result = repository_walk(root="repo")

    assert [walked.path for walked in result.files] == [str(repo / "src" / "main.py")]
    assert relative_paths(result) == ["src/main.py"]


def test_a_path_alone_says_why_it_is_not_indexed(repo: Path) -> None:
    write(repo, ".gitignore", "build/\n")
    write(repo, "build/out.py")
    write(repo, "src/app.py")
    write(repo, ".git/HEAD", "ref: refs/heads/main\n")
    write(repo, "env/pyvenv.cfg", "home = /usr\n")
    write(repo, "env/lib/site.py")

    def examine(relative: str) -> WalkedFile | str:
        return path_examine(root=str(repo), relative_path=relative)

    assert isinstance(examine("src/app.py"), WalkedFile)
    assert examine("build/out.py") == "ignored"
    assert examine(".git/HEAD") == "vcs"
    assert examine("env/lib/site.py") == "vendored"
    assert examine("src/gone.py") == "missing"
    assert examine("src/app.py/inner.py") == "missing"
    assert examine("src") == "not_a_file"
    # Django's own tree, file by file, as the walk selects it.
    import django

    tree = Path(django.__file__).parent / "contrib" / "admin"
    examine_agrees(tree, repository_walk(root=str(tree)))


def test_empty_counter_when_nothing_is_skipped(repo: Path) -> None:
    write(repo, "main.py")

    result = walk(repo)

    assert isinstance(result.skipped, collections.Counter)
    assert result.skipped == collections.Counter()


def test_missing_root_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    with pytest.raises(FileNotFoundError, match="nope"):
        walk(missing)


def test_file_root_raises_not_a_directory_naming_the_path(tmp_path: Path) -> None:
    not_a_dir = write(tmp_path, "plain.txt", "x\n")

    with pytest.raises(NotADirectoryError, match="plain.txt"):
        walk(not_a_dir)


# --- everything at once -------------------------------------------------------------


def test_counts_every_reason_in_one_walk(tmp_path: Path, repo: Path) -> None:
    outside = write(tmp_path, "outside/x.py")
    write(repo, ".gitignore", "*.log\nsecrets/\n")
    write(repo, "debug.log", "x\n")
    write(repo, "secrets/key.py")
    write(repo, "node_modules/a.js", "1;\n")
    write(repo, "dist/app.js", "1;\n")
    write(repo, "poetry.lock", "x\n")
    write(repo, "img.png", b"\x89PNG\r\n")
    write(repo, "blob.dat", b"\x00\x01")
    write(repo, "app.min.js", "1;\n")
    write(repo, "models_pb2.py", "x = 1\n")
    write(repo, "huge.py", "x = 1\n" * 200)
    write(repo, "notes.xyz", "unknown\n")
    (repo / "out.py").symlink_to(outside)
    (repo / "in.py").symlink_to("main.py")
    (repo / "dangling.py").symlink_to("gone.py")
    write(repo, "main.py")
    write(repo, "pkg/util.py")

    def languages(relative_path: str) -> str | None:
        return None if relative_path.endswith(".xyz") else "known"

    result = walk(repo, max_file_bytes=1000, languages=languages)

    assert relative_paths(result) == [".gitignore", "main.py", "pkg/util.py"]
    assert result.skipped == collections.Counter(
        {
            "ignored": 2,
            "vendored": 2,
            "lock_file": 1,
            "binary": 2,
            "minified": 1,
            "generated": 1,
            "too_large": 1,
            "unsupported_type": 1,
            "symlink_outside": 1,
            "symlink": 1,
            "unreadable": 1,
        }
    )
