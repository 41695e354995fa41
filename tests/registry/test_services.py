"""Registry services against the real embedded PostgreSQL."""

import pytest
from django.db import connections

from indexing.models import CodeFile, Repository
from registry.databases import (
    database_name_build,
    project_database_exists,
    project_database_names,
)
from registry.exceptions import (
    InvalidProjectField,
    InvalidProjectName,
    ProjectAlreadyExists,
    ProjectDatabaseExists,
    ProjectNotFound,
    ProvisioningFailed,
)
from registry.models import DEFAULT_DATABASE_NAME, DEFAULT_PROJECT_ID, Project
from registry.routers import ProjectDatabaseRequired
from registry.selectors import project_get, project_list
from registry.services import (
    project_alias,
    project_create,
    project_default_ensure,
    project_delete,
    project_update,
)


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cursor.fetchall()}


def test_two_projects_get_two_databases_with_pgvector_tables(project_factory):
    first = project_factory("alpha")
    second = project_factory("beta")

    assert first.database_name != second.database_name
    for project in (first, second):
        alias = project_alias(project=project)
        assert {"repositories", "code_files", "code_chunks"} <= _tables(alias)
        assert "projects" not in _tables(alias)
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            )
            assert cursor.fetchone() is not None
    assert "code_chunks" not in _tables("default")


def test_rows_written_through_one_alias_are_invisible_from_the_other(project_factory):
    first = project_factory("isolated-a")
    second = project_factory("isolated-b")
    alias_a, alias_b = project_alias(project=first), project_alias(project=second)

    Repository.objects.using(alias_a).create(path="/srv/code", name="code")

    assert Repository.objects.using(alias_a).count() == 1
    assert Repository.objects.using(alias_b).count() == 0


def test_query_without_database_raises(project_factory):
    project_factory("needs-using")
    with pytest.raises(ProjectDatabaseRequired, match="using"):
        CodeFile.objects.count()


@pytest.mark.parametrize(
    "name",
    [
        "x'; DROP DATABASE postgres; --",
        "名前",
        "!!!@@@###",
        "Ünïcødé Project",
        "a" * 255,
    ],
)
def test_hostile_names_are_sanitized_into_valid_distinct_databases(
    project_factory, name
):
    project = project_factory(name)
    twin = project_factory(name + " 2" if len(name) < 250 else name[:-1])

    for made in (project, twin):
        assert len(made.database_name.encode()) <= 63
        assert made.database_name.startswith("cb_proj_")
        assert set(made.database_name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
        assert project_database_exists(database_name=made.database_name)
    assert project.database_name != twin.database_name
    assert project_get(reference=name).pk == project.pk
    assert project_database_exists(database_name="postgres")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a" * 300, "at most 255"),
        ("bad\nname", "control characters"),
        ("bad\ud800name", "lone surrogates"),
        ("00000000-0000-0000-0000-000000000001", "must not be a UUID"),
    ],
)
def test_unusable_names_are_refused_with_a_clear_message(
    transactional_db, name, message
):
    before = set(project_database_names())
    with pytest.raises(InvalidProjectName, match=message):
        project_create(name=name)
    assert set(project_database_names()) == before
    assert Project.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"description": "broken \udc80 escape"}, "lone surrogates"),
        ({"metadata": {"team": "\ud800"}}, "lone surrogates"),
        ({"description": "nul\x00byte"}, "NUL"),
        ({"metadata": {"when": object()}}, "must be JSON"),
    ],
)
def test_unstorable_descriptions_and_metadata_are_refused_before_provisioning(
    project_factory, fields, message
):
    before = set(project_database_names())
    with pytest.raises(InvalidProjectField, match=message):
        project_create(name="fields", **fields)
    assert set(project_database_names()) == before
    assert not Project.objects.filter(name="fields").exists()
    kept = project_factory("kept", description="as it was")
    with pytest.raises(InvalidProjectField, match=message):
        project_update(project=kept, **fields)
    assert Project.objects.get(pk=kept.pk).description == "as it was"


def test_duplicate_name_is_refused_and_changes_nothing(project_factory):
    project_factory("dup")
    before = set(project_database_names())

    with pytest.raises(ProjectAlreadyExists, match="already exists"):
        project_create(name="dup")

    assert set(project_database_names()) == before
    assert Project.objects.filter(name="dup").count() == 1


def test_existing_database_is_refused_and_no_row_is_written(
    project_factory, monkeypatch
):
    taken = project_factory("taken")
    # Make the next project's database name collide with an existing one.
    monkeypatch.setattr(
        "registry.services.database_name_build", lambda **_: taken.database_name
    )
    with pytest.raises(ProjectDatabaseExists, match=taken.database_name):
        project_create(name="collides")
    assert not Project.objects.filter(name="collides").exists()
    assert project_database_exists(database_name=taken.database_name)


def test_failed_migration_leaves_no_row_and_no_database(transactional_db, monkeypatch):
    def broken_migrate(**_):
        raise RuntimeError("migration exploded")

    monkeypatch.setattr("registry.databases.project_database_migrate", broken_migrate)
    before = set(project_database_names())

    with pytest.raises(ProvisioningFailed, match="rolled back"):
        project_create(name="half-made")

    assert not Project.objects.filter(name="half-made").exists()
    assert set(project_database_names()) == before


def test_get_by_id_and_by_name_and_unknown(project_factory):
    project = project_factory("lookup")
    assert project_get(reference=str(project.id)).pk == project.pk
    assert project_get(reference=project.id).pk == project.pk
    assert project_get(reference="  lookup ").pk == project.pk
    with pytest.raises(ProjectNotFound, match="createproject"):
        project_get(reference="nope")
    with pytest.raises(ProjectNotFound):
        project_get(reference="lone \ud800 surrogate")
    assert [p.name for p in project_list()] == ["lookup"]


def test_delete_drops_the_database(project_factory):
    project = project_factory("short-lived")
    project_delete(project=project)
    assert not project_database_exists(database_name=project.database_name)
    assert not Project.objects.filter(pk=project.pk).exists()


def test_update_renames_but_keeps_the_database(project_factory):
    project = project_factory("old-name")
    project_factory("other")
    updated = project_update(project=project, name="new-name", description="d")
    assert project_get(reference="new-name").database_name == project.database_name
    assert updated.description == "d"
    with pytest.raises(ProjectAlreadyExists):
        project_update(project=project, name="other")


def test_default_project_is_created_idempotently(transactional_db):
    first = project_default_ensure()
    second = project_default_ensure()
    assert first.pk == second.pk == DEFAULT_PROJECT_ID
    assert first.database_name == DEFAULT_DATABASE_NAME
    assert project_database_exists(database_name=DEFAULT_DATABASE_NAME)
    assert Project.objects.filter(name="default").count() == 1


def test_database_name_fits_the_identifier_limit():
    import uuid

    name = database_name_build(name="a" * 255, project_id=uuid.uuid4())
    assert len(name) == 63
