"""What index_repository may read: allowed roots, system directories, links."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from indexing.exceptions import RepositoryPathInvalid
from indexing.jobs import index_job_create
from indexing.services import repository_index, repository_path_validate
from indexing.walking import repository_walk


@pytest.fixture
def roots(tmp_path, settings):
    """Allow only `allowed/`; `outside/` sits next to it."""
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    (allowed / "repo").mkdir(parents=True)
    (allowed / "repo" / "app.py").write_text("def handler():\n    return 1\n")
    outside.mkdir()
    (outside / "secret.py").write_text("API_KEY = 'do-not-index'\n")
    settings.CODEBASE_MCP_ALLOWED_ROOTS = [str(allowed)]
    return allowed, outside


def test_a_repository_inside_an_allowed_root_is_accepted(roots):
    allowed, _ = roots
    assert (
        repository_path_validate(repo_path=str(allowed / "repo"))
        == (allowed / "repo").resolve()
    )
    assert repository_path_validate(repo_path=str(allowed)) == allowed.resolve()


@pytest.mark.parametrize(
    "make_path, message",
    [
        (lambda allowed, outside: str(outside), "outside the allowed roots"),
        (lambda allowed, outside: f"{allowed}/../outside", "outside the allowed roots"),
        (
            lambda allowed, outside: f"{allowed}/repo/../../outside",
            "outside the allowed",
        ),
        (lambda allowed, outside: str(allowed.parent), "outside the allowed roots"),
        (lambda allowed, outside: f"{allowed}-sibling", "outside the allowed roots"),
        (lambda allowed, outside: "/", "outside the allowed roots"),
        (lambda allowed, outside: "/etc", "system directory"),
        (lambda allowed, outside: "/etc/../etc/ssl", "system directory"),
        (lambda allowed, outside: "/proc", "system directory"),
        (lambda allowed, outside: "/proc/self/root", "outside the allowed roots"),
        (lambda allowed, outside: "/proc/self/cwd/..", "outside the allowed roots"),
        (lambda allowed, outside: "/sys/kernel", "system directory"),
        (lambda allowed, outside: "/dev/null", "system directory"),
        (lambda allowed, outside: "/dev/shm", "system directory"),
        (lambda allowed, outside: "~/../../etc", "system directory"),
        (lambda allowed, outside: "relative/repo", "absolute"),
        (lambda allowed, outside: "   ", "required"),
        (lambda allowed, outside: f"{allowed}/repo\x00/etc", "NUL"),
    ],
)
def test_paths_out_of_bounds_are_refused_clearly(roots, make_path, message):
    allowed, outside = roots
    with pytest.raises(RepositoryPathInvalid, match=message):
        repository_path_validate(repo_path=make_path(allowed, outside))


def test_symlinks_out_of_the_root_are_refused(roots):
    allowed, outside = roots
    links = {
        "to-etc": Path("/etc"),
        "to-outside": outside,
        "to-dev-null": Path("/dev/null"),
        "to-proc-self": Path("/proc/self"),
    }
    for name, target in links.items():
        (allowed / name).symlink_to(target)
    (allowed / "chain-1").symlink_to(allowed / "chain-2")
    (allowed / "chain-2").symlink_to(allowed / "to-etc")

    for name, message in [
        ("to-etc", "system directory"),
        ("to-outside", "outside the allowed roots"),
        ("to-dev-null", "system directory"),
        ("to-proc-self", "system directory"),
        ("chain-1", "system directory"),
    ]:
        with pytest.raises(RepositoryPathInvalid, match=message):
            repository_path_validate(repo_path=str(allowed / name))


def test_a_repository_whose_name_is_not_utf8_is_refused(roots):
    allowed, _ = roots
    latin1 = os.path.join(os.fsencode(allowed), b"d\xe9p\xf4t")
    os.mkdir(latin1)
    for path in (os.fsdecode(latin1), f"{allowed}/\ud800"):
        with pytest.raises(RepositoryPathInvalid, match="not valid UTF-8"):
            repository_path_validate(repo_path=path)


def test_a_symlink_loop_as_the_repository_is_refused(roots):
    allowed, _ = roots
    (allowed / "loop").symlink_to(allowed / "loop")
    (allowed / "ping").symlink_to(allowed / "pong")
    (allowed / "pong").symlink_to(allowed / "ping")
    for name in ("loop", "ping"):
        with pytest.raises(RepositoryPathInvalid, match="cannot be resolved"):
            repository_path_validate(repo_path=str(allowed / name))


def test_errors_do_not_reveal_what_exists_outside_the_roots(roots):
    allowed, outside = roots
    answers = set()
    for probe in (outside / "secret.py", outside / "missing", outside):
        with pytest.raises(RepositoryPathInvalid) as caught:
            repository_path_validate(repo_path=str(probe))
        answers.add(str(caught.value).replace(str(probe), "PATH"))
    assert len(answers) == 1 and "outside the allowed roots" in answers.pop()


def test_default_roots_are_home_cwd_and_tmp(settings, tmp_path):
    settings.CODEBASE_MCP_ALLOWED_ROOTS = []
    assert repository_path_validate(repo_path=str(tmp_path)) == tmp_path.resolve()
    assert repository_path_validate(repo_path=os.getcwd()) == Path.cwd().resolve()
    home = Path.home()
    if not str(home.resolve()).startswith(("/etc", "/proc", "/sys", "/dev")):
        assert repository_path_validate(repo_path="~") == home.resolve()
    with pytest.raises(RepositoryPathInvalid, match="outside the allowed roots"):
        repository_path_validate(repo_path="/usr/share")


def test_background_jobs_and_the_index_service_apply_the_same_rules(
    roots, project_factory
):
    allowed, outside = roots
    project = project_factory()
    (allowed / "escape").symlink_to(outside)
    for path in (str(outside), str(allowed / "escape"), "/etc", "/dev/null"):
        with pytest.raises(RepositoryPathInvalid):
            index_job_create(project=project, repo_path=path)
        with pytest.raises(RepositoryPathInvalid):
            repository_index(project=project, repo_path=path, embed=False)


def test_symlink_loops_inside_a_repository_do_not_hang_the_walk(roots, project_factory):
    allowed, outside = roots
    repo = allowed / "repo"
    (repo / "pkg").mkdir()
    (repo / "pkg" / "mod.py").write_text("def inner():\n    return 2\n")
    (repo / "self").symlink_to(repo / "self")
    (repo / "ping").symlink_to(repo / "pong")
    (repo / "pong").symlink_to(repo / "ping")
    (repo / "pkg" / "up").symlink_to(repo)
    (repo / "pkg" / "around").symlink_to("../pkg/around")
    (repo / "secret.py").symlink_to(outside / "secret.py")
    (repo / "etc").symlink_to("/etc")

    finished = threading.Event()
    outcome = {}

    def walk() -> None:
        outcome["walk"] = repository_walk(root=str(repo))
        finished.set()

    threading.Thread(target=walk, daemon=True).start()
    assert finished.wait(timeout=30), "the walker did not finish: it follows links"
    walked = {f.relative_path for f in outcome["walk"].files}
    assert walked == {"app.py", "pkg/mod.py"}

    summary = repository_index(
        project=project_factory(), repo_path=str(repo), embed=False
    )
    assert summary.files_indexed == 2
    assert summary.skipped_by_reason == {
        "symlink": 1,
        "symlink_outside": 2,
        "unreadable": 4,
    }


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "/",
                ".",
                "..",
                "~",
                "a",
                " ",
                "\x00",
                "\n",
                "etc",
                "proc",
                "tmp",
                "é",
                "\udce9",
                "\ud800",
            ]
        ),
        max_size=40,
    ).map("".join)
    | st.text(max_size=300)
)
def test_any_text_as_a_path_is_accepted_or_refused_never_crashes(text):
    try:
        resolved = repository_path_validate(repo_path=text)
    except RepositoryPathInvalid as exc:
        assert str(exc)
    else:
        assert resolved.is_dir() and resolved.is_absolute()
