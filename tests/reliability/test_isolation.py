"""Projects never see each other's data, and only registry rows name databases."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import anyio
import psycopg
import pytest
from django.db import connections
from mcp import Client

from indexing.models import CodeChunk, CodeFile, Repository
from indexing.selectors import project_status
from indexing.services import repository_index
from mcp_bridge.resolution import project_resolve
from mcp_bridge.server import server
from registry.databases import (
    project_database_create,
    project_database_drop,
    project_database_exists,
    project_database_register,
)
from registry.exceptions import (
    InvalidProjectName,
    ProjectNotFound,
    UnknownDatabaseServer,
)
from registry.models import Project
from registry.services import project_alias, project_delete
from search.selectors import chunk_search

TOKEN_SOURCE = textwrap.dedent('''
    def rotate_api_token(store, user):
        """Issue a fresh API token and revoke the previous one."""
        old = store.token_for(user)
        store.revoke(old)
        return store.issue(user)
    ''')
LEDGER_SOURCE = textwrap.dedent('''
    def reconcile_ledger_entries(entries):
        """Match debits with credits and return what is left open."""
        return [entry for entry in entries if not entry.matched]
    ''')

NOT_PROJECT_DATABASES = [
    "default",
    "postgres",
    "template1",
    "codebase_mcp_registry",
    "cb_proj_",
    "CB_PROJ_SHOUTING",
    "cb_proj_x; DROP DATABASE postgres",
    'cb_proj_x"; DROP DATABASE postgres; --',
    "cb_proj_../../etc",
    "cb_proj_x\x00",
    "cb_proj_trailing_newline\n",
    " cb_proj_leading_space",
    "cb_proj_" + "a" * 56,
]


def write_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def raw_chunk_count(database_name: str) -> int:
    """Count chunks with a connection of its own, bypassing aliases and pools."""
    params = connections["default"].get_connection_params()
    for key in ("pool", "cursor_factory", "context"):
        params.pop(key, None)
    params["dbname"] = database_name
    with psycopg.connect(**params) as conn:
        return conn.execute("SELECT count(*) FROM code_chunks").fetchone()[0]


@pytest.mark.parametrize("name", NOT_PROJECT_DATABASES)
def test_names_outside_the_project_pattern_never_become_aliases(name):
    aliases_before = set(connections.settings)
    for operation in (project_database_register, project_database_drop):
        with pytest.raises(InvalidProjectName, match="not a project database name"):
            operation(database_name=name)
    with pytest.raises(InvalidProjectName):
        project_database_create(database_name=name)
    assert set(connections.settings) == aliases_before


def test_a_tampered_registry_row_cannot_reach_another_database(project_factory):
    project = project_factory()
    Project.objects.using("default").filter(pk=project.pk).update(
        database_name="postgres"
    )
    tampered = Project.objects.using("default").get(pk=project.pk)

    with pytest.raises(InvalidProjectName):
        project_alias(project=tampered)
    with pytest.raises(InvalidProjectName):
        chunk_search(project=tampered, query="anything", mode="keyword")
    assert "postgres" not in connections.settings

    Project.objects.using("default").filter(pk=project.pk).update(
        database_name=project.database_name, server="somewhere-else"
    )
    moved = Project.objects.using("default").get(pk=project.pk)
    with pytest.raises(UnknownDatabaseServer, match="somewhere-else"):
        project_alias(project=moved)
    Project.objects.using("default").filter(pk=project.pk).update(server="default")


def test_same_file_in_two_projects_search_status_and_delete_stay_apart(
    project_factory, tmp_path
):
    shared = write_repo(tmp_path / "shared", {"tokens.py": TOKEN_SOURCE})
    only_b = write_repo(tmp_path / "only-b", {"ledger.py": LEDGER_SOURCE})
    first, second = project_factory(), project_factory()
    alias_a, alias_b = project_alias(project=first), project_alias(project=second)
    assert alias_a != alias_b

    repository_index(project=first, repo_path=str(shared))
    repository_index(project=second, repo_path=str(shared))
    repository_index(project=second, repo_path=str(only_b))
    repo_a = Repository.objects.using(alias_a).get()
    repo_b = Repository.objects.using(alias_b).get(path=str(shared))
    assert repo_a.path == repo_b.path and repo_a.id != repo_b.id

    hits_a = chunk_search(project=first, query="rotate api token").results
    assert hits_a and {hit.repository_id for hit in hits_a} == {str(repo_a.id)}
    hits_b = chunk_search(project=second, query="rotate api token").results
    assert {hit.repository_id for hit in hits_b} <= {
        str(r.id) for r in Repository.objects.using(alias_b)
    }
    assert not chunk_search(
        project=first, query="reconcile ledger entries", mode="keyword"
    ).results

    status_a, status_b = project_status(project=first), project_status(project=second)
    assert (status_a.files, len(status_a.repositories)) == (1, 1)
    assert (status_b.files, len(status_b.repositories)) == (2, 2)

    # Deleting the file and re-indexing in A leaves B's copy alone.
    b_chunks = raw_chunk_count(second.database_name)
    (shared / "tokens.py").unlink()
    assert repository_index(project=first, repo_path=str(shared)).files_deleted == 1
    assert not CodeFile.objects.using(alias_a).exists()
    assert raw_chunk_count(second.database_name) == b_chunks
    stale = chunk_search(project=second, query="rotate api token", mode="keyword")
    assert stale.results and stale.results[0].stale

    # Deleting project A drops its database only.
    project_delete(project=first)
    assert not project_database_exists(database_name=first.database_name)
    assert first.database_name not in connections.settings
    assert project_database_exists(database_name=second.database_name)
    assert raw_chunk_count(second.database_name) == b_chunks
    assert CodeChunk.objects.using(alias_b).filter(relative_path="ledger.py").exists()
    assert project_status(project=second).files == 2


def test_an_unknown_explicit_project_never_falls_back(project_factory, tmp_path):
    configured = project_factory()
    other = project_factory()
    workdir = tmp_path / "work"
    (workdir / ".codebase-mcp").mkdir(parents=True)
    (workdir / ".codebase-mcp" / "config.json").write_text(
        json.dumps({"project": {"name": configured.name}})
    )
    aliases_before = set(connections.settings)

    # Another project's database name is not a reference to it, and names are
    # matched exactly: nothing here may resolve to anything.
    for reference in (
        "no-such-project",
        str(uuid.uuid4()),
        other.database_name,
        configured.name.upper(),
    ):
        with pytest.raises(ProjectNotFound):
            project_resolve(project_id=reference, working_directory=str(workdir))
    assert set(connections.settings) <= aliases_before | {
        configured.database_name,
        other.database_name,
    }
    resolved = project_resolve(project_id=None, working_directory=str(workdir))
    assert resolved.project.pk == configured.pk and resolved.tier == "session_config"


def test_the_mcp_tools_refuse_an_unknown_project_instead_of_guessing(
    project_factory, tmp_path
):
    configured = project_factory()
    workdir = write_repo(tmp_path / "work", {"tokens.py": TOKEN_SOURCE})
    (workdir / ".codebase-mcp").mkdir()
    (workdir / ".codebase-mcp" / "config.json").write_text(
        json.dumps({"project": {"name": configured.name}})
    )
    repository_index(project=configured, repo_path=str(workdir))
    chunks_before = raw_chunk_count(configured.database_name)
    projects_before = Project.objects.using("default").count()

    async def scenario() -> dict[str, str]:
        errors = {}
        async with Client(server, mode="legacy") as client:
            moved = await client.call_tool(
                "set_working_directory", {"directory": str(workdir)}
            )
            assert not moved.is_error, moved.content
            found = await client.call_tool("search_code", {"query": "rotate api token"})
            assert not found.is_error, found.content
            assert found.structured_content["project"]["name"] == configured.name
            for tool, arguments in {
                "search_code": {"query": "rotate api token"},
                "get_project_status": {},
                "index_repository": {"repo_path": str(workdir)},
                "start_indexing_background": {"repo_path": str(workdir)},
            }.items():
                for reference in ("no-such-project", str(uuid.uuid4())):
                    result = await client.call_tool(
                        tool, {**arguments, "project_id": reference}
                    )
                    assert result.is_error, (tool, result.structured_content)
                    errors[f"{tool}:{reference}"] = result.content[0].text
        return errors

    errors = anyio.run(scenario)
    assert all("No project named or with id" in text for text in errors.values())
    assert raw_chunk_count(configured.database_name) == chunks_before
    assert Project.objects.using("default").count() == projects_before


def test_the_working_directory_holds_on_the_current_protocol_too(
    project_factory, tmp_path
):
    configured = project_factory()
    workdir = tmp_path / "work"
    (workdir / ".codebase-mcp").mkdir(parents=True)
    (workdir / ".codebase-mcp" / "config.json").write_text(
        json.dumps({"project": {"name": configured.name}})
    )

    async def scenario() -> dict:
        async with Client(server) as client:
            await client.call_tool("set_working_directory", {"directory": str(workdir)})
            status = await client.call_tool("get_project_status", {})
            return status.structured_content["project"]

    project = anyio.run(scenario)
    assert (project["name"], project["resolved_by"]) == (
        configured.name,
        "session_config",
    )
