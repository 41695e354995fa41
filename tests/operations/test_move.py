"""Moving projects between servers: there and back, and moves that fail."""

import io

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from indexing.models import IndexJob
from indexing.services import repository_index
from operations.move import project_move
from registry.databases import (
    project_database_exists,
    project_database_params,
    repository_lock_key,
)
from registry.exceptions import ProjectOperationFailed, ProjectOperationRefused
from registry.selectors import project_get
from registry.services import project_alias
from tests.operations.conftest import answers


def test_a_project_moves_there_and_back_with_unchanged_results(make_project, repo):
    travelling = make_project("travelling", server="default")
    resident = make_project("resident", server="second")
    for project in (travelling, resident):
        repository_index(project=project, repo_path=str(repo))
    before = answers(travelling)
    assert before[0][0][3] == "retry_with_backoff"
    assert answers(resident) == before

    out = io.StringIO()
    call_command("moveproject", "travelling", "--to", "second", stdout=out)
    assert "Moved project 'travelling' from 'default' to 'second'" in out.getvalue()
    moved = project_get(reference="travelling")
    assert moved.server == "second"
    assert project_database_exists(database_name=moved.database_name, server="second")
    assert not project_database_exists(database_name=moved.database_name)
    assert answers(moved) == before

    report = project_move(project=moved, to_server="default")
    assert (report.source, report.target, report.old_copy_dropped) == (
        "second",
        "default",
        True,
    )
    assert report.tables["code_chunks"] > 0
    assert moved.server == project_get(reference="travelling").server == "default"
    assert not project_database_exists(
        database_name=moved.database_name, server="second"
    )
    assert answers(moved) == before
    repository_index(project=moved, repo_path=str(repo))  # still writable


def test_failed_moves_leave_the_project_where_it_was(
    servers, make_project, repo, settings
):
    settings.PROJECT_DATABASE_SERVERS = {
        **settings.PROJECT_DATABASE_SERVERS,
        "nowhere": "postgres://postgres@:5432/%2Fnonexistent%2Fsocket/postgres",
    }
    project = make_project("steadfast", server="default")
    repository_index(project=project, repo_path=str(repo))
    before = answers(project)

    with pytest.raises(CommandError, match="still served from 'default'"):
        call_command("moveproject", "steadfast", "--to", "nowhere")
    with pytest.raises(ProjectOperationRefused, match="already on server 'default'"):
        project_move(project=project, to_server="default")
    job = IndexJob.objects.create(project=project, repo_path=str(repo))
    with pytest.raises(ProjectOperationRefused, match="1 queued or running"):
        project_move(project=project, to_server="second")
    job.delete()
    # An indexing run of a known repository holds its advisory lock.
    alias = project_alias(project=project)
    with psycopg.connect(**project_database_params(database_name=alias)) as other:
        other.execute(
            "SELECT pg_advisory_lock(%s)", [repository_lock_key(str(repo.resolve()))]
        )
        with pytest.raises(ProjectOperationRefused, match="is being indexed"):
            project_move(project=project, to_server="second")

    # The target takes the copy but pg_restore fails half-way: every new
    # database there starts with a table the dump creates too.
    with servers.connect("template1") as template:
        template.execute("CREATE TABLE code_files (id integer)")
    try:
        with pytest.raises(ProjectOperationFailed, match="pg_restore failed"):
            project_move(project=project, to_server="second")
    finally:
        with servers.connect("template1") as template:
            template.execute("DROP TABLE code_files")

    stayed = project_get(reference="steadfast")
    assert project.server == stayed.server == "default"
    assert project_database_exists(database_name=stayed.database_name)
    assert not project_database_exists(
        database_name=stayed.database_name, server="second"
    )
    assert answers(stayed) == before
