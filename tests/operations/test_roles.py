"""Each project database has its own login role, kept apart by PostgreSQL itself.

Checked at the PostgreSQL level, with connections of their own: A's role is
refused by the server when it connects to B's database, whatever our code
does; `pg_database` privileges are as intended after create, move and
restore; the role owns every table so indexing works under it.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connections

from indexing.services import repository_index
from operations.backup import project_backup, project_restore
from operations.move import project_move
from registry.databases import project_database_params
from registry.selectors import project_get
from registry.services import project_alias, project_delete
from tests.operations.conftest import answers


def admin(server: str, servers=None) -> psycopg.Connection:
    if server == "second":
        return servers.connect("postgres")
    params = project_database_params(database_name="cb_proj_x")
    return psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True)


def acl(conn: psycopg.Connection, database_name: str) -> dict[str, str]:
    """Return grantee -> privilege letters of a database ('' is PUBLIC)."""
    rows = conn.execute(
        "SELECT coalesce(r.rolname, ''), a.privilege_type FROM pg_database d, "
        "aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE d.datname = %s",
        [database_name],
    ).fetchall()
    found: dict[str, set[str]] = {}
    for grantee, privilege in rows:
        found.setdefault(grantee, set()).add(privilege)
    return {grantee: ",".join(sorted(kinds)) for grantee, kinds in found.items()}


def role_exists(conn: psycopg.Connection, role: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        is not None
    )


def assert_private(conn: psycopg.Connection, project) -> None:
    """Only the project's role (and the admin, the owner) may reach its database."""
    privileges = acl(conn, project.database_name)
    assert "" not in privileges, privileges  # nothing for PUBLIC
    assert privileges[project.database_role] == "CONNECT,CREATE,TEMPORARY"
    owner = conn.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
        [project.database_name],
    ).fetchone()[0]
    assert set(privileges) == {owner, project.database_role}
    attributes = conn.execute(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit "
        "FROM pg_roles WHERE rolname = %s",
        [project.database_role],
    ).fetchone()
    assert attributes == (True, False, False, False, False)


def login_params(project, *, database_name: str | None = None) -> dict:
    """Return connection keywords of a project's role, aimed at any database."""
    params = project_database_params(
        database_name=project.database_name,
        server=project.server,
        login=project.database_login,
    )
    return {**params, "dbname": database_name or project.database_name}


def test_a_role_reaches_its_own_database_only(make_project, repo):
    first = make_project("role-a", server="default")
    second = make_project("role-b", server="default")
    repository_index(project=second, repo_path=str(repo))
    assert first.database_role == first.database_name != second.database_role

    with psycopg.connect(**login_params(first)) as own:
        assert own.execute("SELECT current_user").fetchone()[0] == first.database_role
        # Its own tables are its own: it can read, write and rebuild them.
        owners = own.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(first.database_role,)]
        # Becoming another project's role is refused by PostgreSQL.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            own.execute(
                psycopg.sql.SQL("SET ROLE {}").format(
                    psycopg.sql.Identifier(second.database_role)
                )
            )
    # Connecting to B's database as A: refused by the server, not by us.
    with pytest.raises(
        psycopg.OperationalError, match="permission denied for database"
    ):
        psycopg.connect(**login_params(first, database_name=second.database_name))
    # Nor can it open the registry, which holds every project's secret.
    registry_name = connections["default"].settings_dict["NAME"]
    with pytest.raises(
        psycopg.OperationalError, match="permission denied for database"
    ):
        psycopg.connect(**login_params(first, database_name=registry_name))

    # The maintenance database stays open to every role (PostgreSQL's default):
    # it lists database names, and no project's rows.
    with psycopg.connect(**login_params(first, database_name="postgres")) as other:
        names = {row[0] for row in other.execute("SELECT datname FROM pg_database")}
        assert second.database_name in names
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            other.execute("SELECT rolpassword FROM pg_authid")

    # The project's alias logs in as its role, and indexing works under it.
    with connections[project_alias(project=first)].cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == first.database_role
    summary = repository_index(project=first, repo_path=str(repo), force_reindex=True)
    assert summary.files_indexed == len(list(repo.rglob("*.*")))
    assert answers(first) == answers(second)

    with admin("default") as conn:
        assert_private(conn, first)
        assert_private(conn, second)
        project_delete(project=first)
        assert not role_exists(conn, first.database_role)
        assert role_exists(conn, second.database_role)


def test_move_carries_the_role_and_leaves_no_role_behind(make_project, repo, servers):
    project = make_project("role-move", server="default")
    repository_index(project=project, repo_path=str(repo))
    before = answers(project)

    project_move(project=project, to_server="second")
    moved = project_get(reference=project.pk)
    assert moved.database_login == project.database_login
    with servers.connect("postgres") as conn:
        assert_private(conn, moved)
    with admin("default") as conn:
        assert not role_exists(conn, moved.database_role)
    assert answers(moved) == before
    with psycopg.connect(**login_params(moved)) as own:
        owners = own.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(moved.database_role,)]
    repository_index(project=moved, repo_path=str(repo), force_reindex=True)

    project_move(project=moved, to_server="default")
    back = project_get(reference=project.pk)
    with admin("default") as conn:
        assert_private(conn, back)
    with servers.connect("postgres") as conn:
        assert not role_exists(conn, back.database_role)
    assert answers(back) == before


def test_restore_gives_the_new_database_a_role_of_its_own(
    make_project, repo, tmp_path, servers
):
    original = make_project("role-saved", server="default")
    repository_index(project=original, repo_path=str(repo))
    before = answers(original)
    archive = tmp_path / "saved.tar"
    project_backup(project=original, output=archive)

    copy = project_restore(archive=archive, name="role-copy", server="second").project
    assert copy.database_role == copy.database_name != original.database_role
    assert copy.database_secret != original.database_secret
    with servers.connect("postgres") as conn:
        assert_private(conn, copy)
    with psycopg.connect(**login_params(copy)) as own:
        owners = own.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(copy.database_role,)]
    assert answers(copy) == before

    replaced = project_restore(archive=archive, name="role-saved", replace=True).project
    assert replaced.database_role not in ("", original.database_role)
    with admin("default") as conn:
        assert_private(conn, replaced)
        # The replaced database went, and its role with it.
        assert not role_exists(conn, original.database_role)
    assert answers(replaced) == before
    project_delete(project=copy)
    with servers.connect("postgres") as conn:
        assert not role_exists(conn, copy.database_role)
