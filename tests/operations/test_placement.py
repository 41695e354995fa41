"""Projects are placed across servers and reached on their own server."""

import io
import json

import environ
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from registry.databases import project_database_exists
from registry.services import project_alias


def test_the_socket_url_names_the_second_servers_directory(servers):
    parsed = environ.Env.db_url_config(servers.url)

    assert parsed["HOST"] == str(servers.layout.socket_dir)
    assert (parsed["PORT"], parsed["USER"], parsed["NAME"]) == (
        5432,
        "postgres",
        "postgres",
    )


def test_new_projects_go_to_the_emptiest_server_unless_one_is_named(
    servers, make_project
):
    first = make_project("placed-first")
    second = make_project("placed-second")
    named = make_project("placed-named", server="default")

    assert (first.server, second.server, named.server) == (
        "default",
        "second",
        "default",
    )
    assert project_database_exists(database_name=second.database_name, server="second")
    assert not project_database_exists(database_name=second.database_name)
    # The project's role may not read data_directory: ask which socket it used.
    connection = connections[project_alias(project=second)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == second.database_role
        assert connection.connection.info.host == str(servers.layout.socket_dir)


def test_createproject_takes_a_server_and_refuses_unknown_ones(
    servers, transactional_db
):
    out = io.StringIO()
    call_command(
        "createproject", "cmd-placed", "--server", "second", "--json", stdout=out
    )
    created = json.loads(out.getvalue())
    assert created["server"] == "second"
    assert project_database_exists(
        database_name=created["database_name"], server="second"
    )

    with pytest.raises(CommandError, match="No database server named 'elsewhere'"):
        call_command("createproject", "lost", "--server", "elsewhere")

    call_command("dropproject", "cmd-placed", "--yes", stdout=io.StringIO())
    assert not project_database_exists(
        database_name=created["database_name"], server="second"
    )


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (["east"], "is not `name=postgres://...`"),
        (["=postgres://h/db"], "is not `name=postgres://...`"),
        (["default=postgres://h/db"], "redefines `default`"),
        (["a=postgres://h/db", "a=postgres://k/db"], "twice"),
        (["west=mysql://h/db"], "must be a postgres:// URL"),
    ],
)
def test_malformed_server_entries_stop_the_settings(entries, problem):
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import _database_servers

    with pytest.raises(ImproperlyConfigured, match=problem):
        _database_servers(entries)
    assert _database_servers(["east=postgres://u:p@db1:5432/postgres"]) == {
        "east": "postgres://u:p@db1:5432/postgres"
    }
