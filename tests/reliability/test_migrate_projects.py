"""`manage.py migrate_projects` brings old project schemas forward, one by one."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from indexing.models import CodeChunk
from indexing.services import repository_index
from registry.databases import project_connection, project_login_forget
from registry.models import Project
from registry.services import project_alias, project_databases_migrate
from search.selectors import chunk_search

SOURCE = '''
def checksum_of_upload(stream):
    """Hash an uploaded file in chunks so large files fit in memory."""
    return sum(stream)
'''


def tables(project: Project) -> set[str]:
    connection = project_connection(
        database_name=project.database_name, server=project.server
    )
    with connection.cursor() as cursor:
        names = set(connection.introspection.table_names(cursor))
    connection.close()
    return names


def migrate_back(project: Project, target: str) -> None:
    """Turn `project` into one made before roles, at an older schema.

    Only the admin may drop the extensions an old schema lacks, and an old
    project has no role of its own: migrate_projects must give it one.
    """
    Project.objects.using("default").filter(pk=project.pk).update(
        database_role="", database_secret=""
    )
    project.database_role = project.database_secret = ""
    project_login_forget(database_name=project.database_name)
    call_command(
        "migrate",
        "indexing",
        target,
        database=project_alias(project=project),
        interactive=False,
        verbosity=0,
        stdout=io.StringIO(),
    )


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "upload.py").write_text(SOURCE)
    return root


def test_old_schemas_are_migrated_and_a_broken_project_does_not_stop_the_rest(
    project_factory, repo
):
    behind = project_factory("behind-one")
    empty = project_factory("behind-all")
    current = project_factory("up-to-date")
    repository_index(project=behind, repo_path=str(repo))
    chunks = CodeChunk.objects.using(project_alias(project=behind)).count()
    migrate_back(behind, "0001")
    migrate_back(empty, "zero")
    assert "search_counters" not in tables(behind) and "code_chunks" in tables(behind)
    assert "code_chunks" not in tables(empty)
    Project.objects.using("default").create(
        name="ghost", database_name="cb_proj_ghost_0badc0de"
    )
    Project.objects.using("default").create(
        name="elsewhere", database_name="cb_proj_elsewhere_0badc0de", server="gone"
    )

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"5 project\(s\): 3 up to date, 2 failed"):
        call_command("migrate_projects", stdout=out, stderr=err)

    lines = {line.split()[1]: line for line in out.getvalue().splitlines()}
    assert lines["behind-one"].startswith("migrated")
    assert (
        lines["behind-one"].endswith(("s)",))
        and "0002_search_stats" in lines["behind-one"]
    )
    assert "0001_initial" not in lines["behind-one"]
    assert "indexing.0001_initial, indexing.0002_search_stats" in lines["behind-all"]
    assert lines["up-to-date"].startswith("current")
    failures = err.getvalue()
    assert "ghost" in failures and "cb_proj_ghost_0badc0de" in failures
    assert "does not exist on server 'default'" in failures
    assert "elsewhere" in failures and "gone" in failures

    # Data written before survives; the emptied database works again.
    assert {"search_counters", "search_latencies"} <= tables(behind)
    assert CodeChunk.objects.using(project_alias(project=behind)).count() == chunks
    assert "code_chunks" in tables(empty)
    summary = repository_index(project=empty, repo_path=str(repo))
    assert summary.files_indexed == 1
    hits = chunk_search(project=empty, query="hash an uploaded file").results
    assert hits[0].symbol == "checksum_of_upload"
    assert tables(current) == tables(empty)

    Project.objects.using("default").filter(name__in=["ghost", "elsewhere"]).delete()
    out = io.StringIO()
    call_command("migrate_projects", "--json", stdout=out)
    results = json.loads(out.getvalue())
    assert [r["name"] for r in results] == ["behind-all", "behind-one", "up-to-date"]
    assert all(r["ok"] and r["applied"] == [] for r in results)
    assert [r["role_created"] for r in results] == [False, False, False]
    for name in ("behind-all", "behind-one"):
        project = Project.objects.using("default").get(name=name)
        assert project.database_role == project.database_name
        connection = connections[project_alias(project=project)]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, count(*) FILTER (WHERE tableowner <> "
                "current_user) FROM pg_tables WHERE schemaname = 'public' "
                "GROUP BY 1"
            )
            assert cursor.fetchone() == (project.database_role, 0)


def test_the_service_returns_one_result_per_project(project_factory):
    first = project_factory("svc-first")
    migrate_back(first, "0001")
    results = project_databases_migrate(projects=[first])
    assert len(results) == 1
    result = results[0]
    assert (result.name, result.database_name, result.server) == (
        "svc-first",
        first.database_name,
        "default",
    )
    assert result.ok and result.role_created
    assert result.applied == [
        "indexing.0002_search_stats",
        "indexing.0003_search_terms",
        "indexing.0004_symbols",
        "indexing.0005_file_texts",
        "indexing.0006_text_segments",
        "indexing.0007_repository_git",
        "indexing.0008_navigation_writes",
        "indexing.0009_job_embedding_progress",
        "indexing.0010_halfvec_vectors",
    ]
    assert project_databases_migrate(projects=[first])[0].applied == []


def test_one_named_project_only_and_an_unknown_name_is_refused(project_factory):
    wanted = project_factory("only-this")
    other = project_factory("not-this")
    migrate_back(wanted, "0001")
    migrate_back(other, "0001")
    out = io.StringIO()
    call_command("migrate_projects", "--project", "only-this", stdout=out)
    assert "only-this" in out.getvalue() and "not-this" not in out.getvalue()
    assert "search_counters" not in tables(other)
    with pytest.raises(CommandError, match="No project named"):
        call_command("migrate_projects", "--project", "nope", stdout=io.StringIO())
