"""createproject / listprojects / dropproject through call_command."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry.databases import project_database_exists
from registry.models import Project


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_list_drop_round_trip(transactional_db):
    created = json.loads(
        run("createproject", "cmd-app", "--description", "d", "--json")
    )
    assert created["name"] == "cmd-app"
    assert created["database_name"].startswith("cb_proj_cmd_app_")
    assert project_database_exists(database_name=created["database_name"])

    listed = json.loads(run("listprojects", "--json"))
    assert [p["name"] for p in listed] == ["cmd-app"]
    assert "cmd-app" in run("listprojects")

    with pytest.raises(CommandError, match="--yes"):
        call_command("dropproject", "cmd-app")
    assert Project.objects.filter(name="cmd-app").exists()

    assert "Dropped" in run("dropproject", "cmd-app", "--yes")
    assert not project_database_exists(database_name=created["database_name"])


def test_create_prints_the_database_name(transactional_db):
    output = run("createproject", "printed")
    project = Project.objects.get(name="printed")
    assert project.database_name in output
    run("dropproject", "printed", "--yes")


def test_errors_are_command_errors(transactional_db):
    with pytest.raises(CommandError, match="must not be empty"):
        call_command("createproject", "  ")
    with pytest.raises(CommandError, match="No project named"):
        call_command("dropproject", "ghost", "--yes")
