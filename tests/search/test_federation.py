"""One query over several projects: equal to one project within ties, isolated,
partial when a project's server is down, and safe with hostile project lists.

The corpus is real code: three packages installed in this virtualenv
(django-environ, asgiref, sqlparse's engine), each a repository.

What "equal to a single project" means here. Federated search merges by rank
over lists that mean the same in every database (search.federation): the
global semantic list (every hit by the cosine distance of its vector to the
one query vector) and each project's own answer. In semantic mode the global
semantic rank alone decides, so against one project S holding the three
repositories the answer is S's answer: same hits, same order (ties: hits at
the same distance, which would come in project order). In hybrid and keyword
modes a project's own rank depends on its BM25 statistics (document
frequencies differ between S and a project holding one repository), so the
tests assert what the merge guarantees there: every hit is one its project
gave, labelled with it; keyword mode keeps each project's order; and a
question about one package is answered from that package first.
"""

from __future__ import annotations

import shutil
import site
import textwrap
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from indexing.services import repository_index
from registry.databases import project_database_unregister
from registry.exceptions import InvalidProjectList, ProjectsNotFound
from registry.models import Project
from registry.selectors import MAX_PROJECTS, projects_get
from search.exceptions import InvalidSearchQuery
from search.federation import chunk_search_federated, symbol_find_federated
from search.selectors import chunk_search
from tests.operations.conftest import FILES

PACKAGES = {
    "environ": ("environ", None),
    "asgiref": ("asgiref", None),
    "sqlparse": ("sqlparse", ("engine", "keywords.py", "lexer.py")),
}
QUERIES = (
    "read a database URL from an environment variable",
    "run a synchronous function from async code in a thread",
    "split SQL text into statements",
    "parse a boolean value from a string",
)


def _copy_package(name: str, keep: tuple[str, ...] | None, target: Path) -> Path:
    source = Path(site.getsitepackages()[0]) / name
    root = target / name
    if keep is None:
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__"))
        return root
    root.mkdir(parents=True)
    for part in keep:
        if (source / part).is_dir():
            shutil.copytree(
                source / part,
                root / part,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy(source / part, root / part)
    return root


@pytest.fixture
def three(project_factory, tmp_path):
    """Three projects of one repository each, and one project holding all three."""
    repos = {
        name: _copy_package(package, keep, tmp_path / "code")
        for name, (package, keep) in PACKAGES.items()
    }
    single = project_factory()
    parts = {}
    for name, repo in repos.items():
        parts[name] = project_factory(name=f"fed-{name}-{single.name[-8:]}")
        repository_index(project=parts[name], repo_path=str(repo))
        repository_index(project=single, repo_path=str(repo))
    return single, parts, repos


def _key(hit) -> tuple:
    return (hit.file_path, hit.start_line, hit.end_line, hit.symbol)


def test_semantic_federated_search_equals_one_project_within_ties(three):
    single, parts, repos = three
    projects = list(parts.values())
    repository_of = {p.name: str(repos[name]) for name, p in parts.items()}
    mixed = []
    for query in QUERIES:
        federated = chunk_search_federated(
            projects=projects, query=query, mode="semantic", limit=12
        )
        assert [p.status for p in federated.projects] == ["ok"] * 3
        whole = chunk_search(project=single, query=query, mode="semantic", limit=12)
        # Every hit names the project that holds it.
        assert all(
            hit.repository == repository_of[hit.project] for hit in federated.results
        )
        mixed.append(len({hit.project for hit in federated.results}) > 1)
        # A hit is its ranked chunk; its extent may differ, since a project
        # fetching rows of its repository alone reaches deeper and widens a
        # split function with more of its pieces.
        got = [(h.repository, h.file_path, h.symbol) for h in federated.results]
        want = [(h.repository, h.file_path, h.symbol) for h in whole.results]
        assert got == want, query
        for mine, theirs in zip(federated.results, whole.results, strict=True):
            assert mine.start_line <= theirs.end_line
            assert theirs.start_line <= mine.end_line
    # Some answers mix projects: the merge, not one project, decided them.
    assert any(mixed)


EXPECTED_FIRST = {
    "read a database URL from an environment variable": "environ",
    "run a synchronous function from async code in a thread": "asgiref",
    "split SQL text into statements": "sqlparse",
}


@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_other_modes_label_hits_keep_project_answers_and_find_the_package(three, mode):
    _, parts, repos = three
    projects = list(parts.values())
    for query in QUERIES:
        federated = chunk_search_federated(
            projects=projects, query=query, mode=mode, limit=15
        )
        scores = [hit.score for hit in federated.results]
        assert scores == sorted(scores, reverse=True)
        for name, project in parts.items():
            alone = chunk_search(project=project, query=query, mode=mode, limit=15)
            mine = [_key(h) for h in federated.results if h.project == project.name]
            theirs = [_key(h) for h in alone.results]
            assert all(
                h.repository == str(repos[name])
                for h in federated.results
                if h.project == project.name
            )
            assert set(mine) <= set(theirs)
            if mode == "keyword":
                # Ranks within a project decide first: its order is kept.
                assert mine == theirs[: len(mine)], (query, name)
        if query in EXPECTED_FIRST:
            first = federated.results[0].project
            assert first == parts[EXPECTED_FIRST[query]].name, (query, mode)


def _backends_on(database_name: str) -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
            [database_name],
        )
        return cursor.fetchone()[0]


def test_a_query_over_a_and_b_never_opens_c(three):
    _, parts, _ = three
    a, b, c = parts.values()
    # C was indexed: close its pool and end any session left on it, so any
    # later connection to it shows.
    project_database_unregister(database_name=c.database_name)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [c.database_name],
        )
    for _ in range(50):
        if _backends_on(c.database_name) == 0:
            break
        time.sleep(0.1)
    assert _backends_on(c.database_name) == 0
    found = chunk_search_federated(projects=[a, b], query=QUERIES[0])
    assert {hit.project for hit in found.results} <= {a.name, b.name}
    symbol_find_federated(projects=[a, b], name="Env")
    assert c.database_name not in connections.settings
    assert _backends_on(c.database_name) == 0
    # The federated threads handed their connections back to A's and B's pools.
    assert _backends_on(a.database_name) > 0


def test_calls_reuse_their_threads_and_hand_every_connection_back(three):
    import threading

    from registry.services import project_alias

    _, parts, _ = three
    projects = list(parts.values())
    pools = [connections[project_alias(project=p)].pool for p in projects]

    def federation_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("federation")}

    def checked_out() -> list[int]:
        return [
            stats["pool_size"] - stats["pool_available"]
            for stats in (pool.get_stats() for pool in pools)
        ]

    chunk_search_federated(projects=projects, query=QUERIES[0])
    threads, held = federation_threads(), checked_out()
    for query in QUERIES[1:4]:
        chunk_search_federated(projects=projects, query=query)
    # Threads are kept between calls (starting them per call cost more than
    # a small project's search), and hold no connection between them.
    assert federation_threads() == threads
    assert checked_out() == held


SMALL = {"net/retry.py": FILES["src/net/retry.py"]}


def _small_repo(root: Path) -> Path:
    for relative, source in SMALL.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return root


@pytest.fixture
def spare_server(settings, tmp_path_factory):
    """A second embedded server this test may stop; stopped after the test."""
    from registry.dbserver import (
        server_ensure,
        server_layout,
        server_stop,
        server_wait_stopped,
    )
    from tests.operations.conftest import socket_url

    layout = server_layout(home=tmp_path_factory.mktemp("spare-home"))
    server_ensure(layout=layout)
    settings.PROJECT_DATABASE_SERVERS = {"spare": socket_url(layout)}
    try:
        yield layout
    finally:
        server_stop(layout=layout)
        server_wait_stopped(layout=layout)
        shutil.rmtree(layout.root, ignore_errors=True)
        shutil.rmtree(layout.socket_dir, ignore_errors=True)


def test_a_project_whose_server_stopped_gives_a_note_and_the_others_answer(
    spare_server, project_factory, tmp_path, settings
):
    from registry.dbserver import server_ensure, server_stop, server_wait_stopped

    here = project_factory()
    there = project_factory(server="spare")
    for project, name in ((here, "here"), (there, "there")):
        repository_index(project=project, repo_path=str(_small_repo(tmp_path / name)))
    both = chunk_search_federated(projects=[here, there], query="retry with backoff")
    assert {hit.project for hit in both.results} == {here.name, there.name}

    settings.FEDERATED_PROJECT_TIMEOUT_SECONDS = 3.0
    server_stop(layout=spare_server)
    server_wait_stopped(layout=spare_server)
    try:
        found = chunk_search_federated(
            projects=[here, there], query="retry with backoff"
        )
        found_names = symbol_find_federated(
            projects=[there, here], name="retry_with_backoff"
        )
    finally:
        server_ensure(layout=spare_server)
    assert found.results and {hit.project for hit in found.results} == {here.name}
    outcome = {p.name: p for p in found.projects}
    assert outcome[here.name].status == "ok"
    assert outcome[there.name].status in ("failed", "timed_out")
    assert any(there.name in note for note in found.notes)
    assert [s.project for s in found_names.symbols] == [here.name]
    assert any(there.name in note for note in found_names.notes)


# --- hostile project lists ------------------------------------------------------


def test_hostile_project_lists_give_clear_errors_and_leak_nothing(project_factory):
    real = project_factory()
    secret = project_factory()
    count = Project.objects.using("default").count()

    with pytest.raises(InvalidProjectList, match=f"at most {MAX_PROJECTS}"):
        projects_get(references=[f"p{n}" for n in range(1000)])
    # A thousand times the same name is one project.
    assert projects_get(references=[real.name] * 1000) == [real]
    assert projects_get(references=[real.name, str(real.id), real.name]) == [real]
    with pytest.raises(InvalidProjectList, match="empty"):
        projects_get(references=[])
    with pytest.raises(InvalidProjectList, match="list"):
        projects_get(references=real.name)
    with pytest.raises(InvalidProjectList, match="int"):
        projects_get(references=[real.name, 7])
    with pytest.raises(InvalidProjectList, match="empty name"):
        projects_get(references=[real.name, "  "])

    hostile = [
        "x'; DROP DATABASE " + real.database_name + "; --",
        "' OR '1'='1",
        "%",
        "_",
        "default\x00",
        "\ud800",
        "a" * 10_000,
    ]
    for name in hostile:
        with pytest.raises(ProjectsNotFound) as caught:
            projects_get(references=[real.name, name])
        assert "No project you can read" in str(caught.value)
        assert real.name not in str(caught.value)
    # An unreadable project is refused exactly as an unknown one.
    unreadable = _message(
        lambda: projects_get(
            references=[secret.name], readable=lambda p: p.pk != secret.pk
        )
    )
    unknown = _message(lambda: projects_get(references=["no-such-project"]))
    assert unreadable.replace(secret.name, "NAME") == unknown.replace(
        "no-such-project", "NAME"
    )
    assert Project.objects.using("default").count() == count
    assert chunk_search(project=real, query="anything").total_count == 0


def _message(call) -> str:
    with pytest.raises(ProjectsNotFound) as caught:
        call()
    return str(caught.value)


def test_bad_arguments_fail_once_not_per_project(project_factory):
    projects = [project_factory(), project_factory()]
    with pytest.raises(InvalidSearchQuery, match="empty"):
        chunk_search_federated(projects=projects, query="   ")
    with pytest.raises(InvalidSearchQuery, match="Unknown mode"):
        chunk_search_federated(projects=projects, query="x", mode="fast")
    with pytest.raises(InvalidSearchQuery, match="limit"):
        symbol_find_federated(projects=projects, name="x", limit=0)


def test_commands_take_several_projects(project_factory, tmp_path):
    a, b = project_factory(), project_factory()
    repository_index(project=a, repo_path=str(_small_repo(tmp_path / "a")))
    for command, argument, expected in (
        ("search", "retry with backoff", f"[{a.name}] net/retry.py:"),
        ("symbols", "retry_with_backoff", f"[{a.name}] net/retry.py:"),
        ("grep", "delay", f"[{a.name}] net/retry.py:"),
    ):
        out = StringIO()
        call_command(
            command,
            argument,
            "--project",
            b.name,
            "--project",
            a.name,
            stdout=out,
            stderr=StringIO(),
        )
        assert expected in out.getvalue(), (command, out.getvalue())
    with pytest.raises(CommandError, match="No project you can read"):
        call_command(
            "search", "x", "--project", a.name, "--project", "nope", stdout=StringIO()
        )


def test_a_project_on_other_shipped_weights_is_searched_with_them(
    project_factory, tmp_path, settings
):
    old, new = project_factory(), project_factory()
    settings.MINILM_WEIGHTS = "original"
    repository_index(project=old, repo_path=str(_small_repo(tmp_path / "old")))
    settings.MINILM_WEIGHTS = "code"
    repository_index(project=new, repo_path=str(_small_repo(tmp_path / "new")))

    found = chunk_search_federated(
        projects=[old, new], query="call again after a growing pause", mode="semantic"
    )

    # Each project answered by its own vectors: neither fell back to keywords.
    assert {hit.project for hit in found.results[:2]} == {old.name, new.name}
    assert not any("keywords" in note for note in found.notes), found.notes
    assert {hit.file_path for hit in found.results[:2]} == {"net/retry.py"}
