"""Provision, register and drop project databases at runtime.

This is the only module that touches `django.db.connections` settings. A
project's alias is its database name; its settings are a deep copy of the
registry's (`default`) with NAME changed and a psycopg pool sized by
POOL_MIN_SIZE / POOL_MAX_SIZE. Registration is idempotent, lazy (every process
registers an alias the first time it needs it) and serialised by a lock.

Project databases may live on several PostgreSQL servers: `default` (the
registry's own) and the named entries of PROJECT_DATABASE_SERVERS. An alias of
a project on a named server is the same deep copy with HOST, PORT, USER,
PASSWORD (and URL options) of that server; maintenance connections (CREATE /
DROP DATABASE) go to the server's maintenance database. Every function that
reaches a server takes `server` (default `default`).

Each project database has a login role of its own, named like the database,
with a generated secret kept in the registry (`ProjectLogin`). The role owns
the project's tables and is the only role besides the registry's (admin) one
allowed to CONNECT; project aliases, pg_dump / pg_restore and watcher sessions
log in as it. A project registered without a login (one made before roles
existed, until `migrate_projects` gives it one) is reached as the admin role.
Creating databases and roles, and extensions PostgreSQL reserves to
superusers, stays on the admin's maintenance connections.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import logging
import re
import secrets
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import environ
import psycopg
from django.conf import settings
from django.contrib.postgres.operations import CreateExtension
from django.core.management import call_command
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.utils import load_backend
from psycopg import sql

from registry.exceptions import (
    InvalidProjectName,
    ProjectDatabaseExists,
    ProjectDatabaseUnavailable,
    ProvisioningFailed,
    UnknownDatabaseServer,
)

logger = logging.getLogger("codebase_mcp.registry")

# The registry's own PostgreSQL server; others come from PROJECT_DATABASE_SERVERS.
DEFAULT_SERVER = "default"

DATABASE_PREFIX = "cb_proj_"
# PostgreSQL truncates identifiers to 63 bytes; "cb_proj_" + name + "_" + uuid8.
_MAX_IDENTIFIER = 63
_MAX_SANITIZED = _MAX_IDENTIFIER - len(DATABASE_PREFIX) - 1 - 8
_DATABASE_NAME_RE = re.compile(r"^cb_proj_[a-z0-9_]{1,55}$")

# The app whose migrations build a project database (registry.routers.PROJECT_APP).
_PROJECT_APP = "indexing"


@dataclass(frozen=True)
class ProjectLogin:
    """The login role of a project database and its secret."""

    role: str
    # Never shown: dataclass repr would otherwise print it into logs.
    secret: str = field(repr=False)


_register_lock = threading.RLock()
# alias -> (server, its URL, role) the alias was last registered for. Kept when
# an alias is unregistered, so project_connection() on a forgotten alias
# returns to that server instead of guessing `default`.
_alias_servers: dict[str, tuple[str, str | None, str | None]] = {}
# database name -> its login, as last registered; used by callers that name a
# database without its project row (a forgotten alias, a watcher session).
_logins: dict[str, ProjectLogin] = {}

MAINTENANCE_DATABASE = "postgres"
# Seconds to wait for a server before calling it unreachable; a server named
# in PROJECT_DATABASE_SERVERS may be another host that is down.
CONNECT_TIMEOUT = 10


def database_server_names() -> list[str]:
    """Return every server that may hold project databases, `default` first."""
    return [DEFAULT_SERVER, *settings.PROJECT_DATABASE_SERVERS]


def database_server_check(*, server: str) -> str:
    """Return `server` when it is configured, else raise UnknownDatabaseServer."""
    _server_url(server)
    return server


def _server_url(server: str) -> str | None:
    """Return a server's URL; None for `default`, the registry's own connection."""
    if server == DEFAULT_SERVER:
        return None
    url = settings.PROJECT_DATABASE_SERVERS.get(server)
    if url is None:
        raise UnknownDatabaseServer(server, database_server_names())
    return url


def _server_settings(server: str) -> dict:
    """Return Django settings for the maintenance database of a server.

    A deep copy of the registry's settings (same ENGINE, options and health
    checks) with the address, credentials and URL options of the server.
    """
    config = copy.deepcopy(connections.settings["default"])
    config["NAME"] = MAINTENANCE_DATABASE
    url = _server_url(server)
    if url is not None:
        parsed = environ.Env.db_url_config(url)
        config["HOST"] = str(parsed.get("HOST") or "")
        config["PORT"] = str(parsed.get("PORT") or "")
        config["USER"] = str(parsed.get("USER") or "")
        config["PASSWORD"] = str(parsed.get("PASSWORD") or "")
        config["NAME"] = str(parsed.get("NAME") or MAINTENANCE_DATABASE)
        options = dict(config.get("OPTIONS") or {})
        options.update(parsed.get("OPTIONS") or {})
        config["OPTIONS"] = options
    return config


def _connection_params(config: dict) -> dict:
    """Return psycopg.connect() keywords for the Django settings `config`."""
    # The backend builds them exactly as it does for its own connections
    # (sslmode, passfile, service...); pool and adapters are Django's business.
    wrapper = load_backend(config["ENGINE"]).DatabaseWrapper(config)
    params = wrapper.get_connection_params()
    for key in ("pool", "cursor_factory", "context"):
        params.pop(key, None)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return params


def _server_start(server: str) -> None:
    if server == DEFAULT_SERVER:
        # Opening `default` once makes the embedded backend start the server.
        connections["default"].ensure_connection()


def _login_apply(config: dict, login: ProjectLogin | None) -> dict:
    """Make `config` log in as the project's role when it has one."""
    if login is not None:
        config["USER"] = login.role
        config["PASSWORD"] = login.secret
    return config


def _login_for(database_name: str, login: ProjectLogin | None) -> ProjectLogin | None:
    if login is not None:
        if login.role != database_name:
            raise InvalidProjectName(
                f"The role {login.role!r} is not the login of {database_name!r}."
            )
        _logins[database_name] = login
        return login
    return _logins.get(database_name)


def project_database_params(
    *,
    database_name: str,
    server: str = DEFAULT_SERVER,
    login: ProjectLogin | None = None,
) -> dict:
    """Return psycopg.connect() keywords for a project database on a server.

    For work that must bypass the alias and its pool: a copy of a project on
    another server has the same database name (and so the same alias), and
    pg_dump / pg_restore need plain connection parameters. The connection
    logs in as `login` (or the login last registered for the database).
    """
    _check_database_name(database_name)
    _server_start(server)
    config = _server_settings(server)
    config["NAME"] = database_name
    _login_apply(config, _login_for(database_name, login))
    return _connection_params(config)


def project_session_open(
    *,
    database_name: str,
    server: str = DEFAULT_SERVER,
    login: ProjectLogin | None = None,
) -> psycopg.Connection:
    """Open an autocommit connection of its own to a project database.

    Outside the alias and its pool, for a session that must live as long as
    a process does (a watcher's advisory locks are held by the session, so a
    pooled connection handed back would hand its locks to the next borrower).
    The caller closes it. Raise ProjectDatabaseUnavailable when the server
    cannot be reached.
    """
    params = project_database_params(
        database_name=database_name, server=server, login=login
    )
    try:
        return psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as exc:
        raise ProjectDatabaseUnavailable(
            f"Cannot reach the project database {database_name!r}: {exc}"
        ) from exc


def database_name_sanitize(*, name: str) -> str:
    """Return the `[a-z0-9_]` form of a project name used inside database names."""
    ascii_name = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    )
    cleaned = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    return cleaned[:_MAX_SANITIZED].strip("_") or "project"


def database_name_build(*, name: str, project_id: uuid.UUID) -> str:
    """Return `cb_proj_{sanitized_name}_{uuid8}` for a project."""
    return f"{DATABASE_PREFIX}{database_name_sanitize(name=name)}_{project_id.hex[:8]}"


def _check_database_name(database_name: str) -> None:
    # Aliases and SQL identifiers are built from this name: refuse anything
    # that did not come from database_name_build (or the default's fixed name).
    # fullmatch: `$` alone would also accept a trailing newline.
    if not _DATABASE_NAME_RE.fullmatch(database_name):
        raise InvalidProjectName(
            f"{database_name!r} is not a project database name (expected "
            "cb_proj_<letters, digits, underscores>)."
        )


def _alias_settings(
    database_name: str, server: str = DEFAULT_SERVER, login: ProjectLogin | None = None
) -> dict:
    config = _login_apply(_server_settings(server), login)
    config["NAME"] = database_name
    config["CONN_MAX_AGE"] = 0
    config["CONN_HEALTH_CHECKS"] = True
    options = dict(config.get("OPTIONS") or {})
    options["pool"] = {
        "min_size": settings.POOL_MIN_SIZE,
        "max_size": settings.POOL_MAX_SIZE,
        "timeout": settings.POOL_TIMEOUT,
        "name": database_name,
    }
    config["OPTIONS"] = options
    config["TEST"] = {"NAME": database_name, "MIRROR": None}
    return config


def project_database_register(
    *,
    database_name: str,
    server: str = DEFAULT_SERVER,
    login: ProjectLogin | None = None,
) -> str:
    """Register the connection alias of a project database; return the alias.

    The alias logs in as `login` (or the login last registered for this
    database; the admin role for a project that has none yet). An alias
    registered for another server or role (the project moved or was given
    its role, perhaps by another process) is pointed there in place: its pool
    is closed and the settings dict that every thread's wrapper shares is
    rewritten, so each thread reconnects on its next query.
    """
    _check_database_name(database_name)
    login = _login_for(database_name, login)
    wanted = (server, _server_url(server), login.role if login else None)
    if (
        database_name in connections.settings
        and _alias_servers.get(database_name) == wanted
    ):
        return database_name
    with _register_lock:
        config = connections.settings.get(database_name)
        if config is None:
            connections.settings[database_name] = _alias_settings(
                database_name, server, login
            )
        elif _alias_servers.get(database_name) != wanted:
            _alias_close(database_name)
            config.clear()
            config.update(_alias_settings(database_name, server, login))
        _alias_servers[database_name] = wanted
    return database_name


def _alias_close(database_name: str) -> None:
    """Close this thread's connection and the shared pool of an alias."""
    connection = connections[database_name]
    try:
        connection.close()
    except Exception:  # a dead connection cannot block re-pointing it
        logger.debug("closing %s failed", database_name, exc_info=True)
    try:
        connection.close_pool()
    except Exception:
        logger.debug("closing the pool of %s failed", database_name, exc_info=True)


def project_database_server(*, database_name: str) -> str | None:
    """Return the server this process last registered an alias for, if any."""
    registered = _alias_servers.get(database_name)
    return registered[0] if registered else None


def project_database_unregister(*, database_name: str) -> None:
    """Close this process's pool and connection for a project and forget its alias."""
    with _register_lock:
        if database_name not in connections.settings:
            return
        connection = connections[database_name]
        try:
            connection.close()
        except Exception:  # a dead connection cannot block forgetting it
            logger.debug("closing %s failed", database_name, exc_info=True)
        try:
            connection.close_pool()
        except Exception:
            logger.debug("closing the pool of %s failed", database_name, exc_info=True)
        del connections[database_name]
        del connections.settings[database_name]


def project_login_forget(*, database_name: str) -> None:
    """Forget a database's login here: its alias next logs in as the admin.

    For a project whose registry row no longer names a role (one restored
    from a registry backup made before roles existed; tests that rebuild
    such a project); `migrate_projects` gives it its role again.
    """
    _check_database_name(database_name)
    project_database_unregister(database_name=database_name)
    _logins.pop(database_name, None)
    _alias_servers.pop(database_name, None)


def project_connection(
    *,
    database_name: str,
    server: str | None = None,
    login: ProjectLogin | None = None,
) -> BaseDatabaseWrapper:
    """Return this thread's connection wrapper for a project database.

    Without `server` the alias is used as registered (project_alias registers
    it for the project's server and role), else for the server it was last
    registered for, else for `default`.
    """
    if server is None and login is None:
        _check_database_name(database_name)
        if database_name in connections.settings:
            return connections[database_name]
    if server is None:
        server = project_database_server(database_name=database_name) or DEFAULT_SERVER
    return connections[
        project_database_register(
            database_name=database_name, server=server, login=login
        )
    ]


def thread_connections_release() -> None:
    """Close this thread's connections, handing pooled ones back to their pools.

    For threads a process starts for one piece of work (a search over several
    projects runs each project in a thread): Django keeps a connection per
    thread and alias, and a thread that ends holding one would keep it from
    its pool until the garbage collector closes it.
    """
    connections.close_all()


@contextmanager
def _server_connection(*, server: str = DEFAULT_SERVER) -> Iterator[psycopg.Connection]:
    """Open an autocommit connection to a server's maintenance database.

    CREATE/DROP DATABASE cannot run inside a transaction block, and the
    `default` connection may be inside one (admin views, tests).
    """
    config = _server_settings(server)
    _server_start(server)
    params = _connection_params(config)
    try:
        conn = psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as exc:
        where = "" if server == DEFAULT_SERVER else f" {server!r}"
        raise ProjectDatabaseUnavailable(
            f"Cannot reach the PostgreSQL server{where} that holds project "
            f"databases: {exc}"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def project_database_exists(
    *, database_name: str, server: str = DEFAULT_SERVER
) -> bool:
    """Return whether a database of that name exists on the server."""
    with _server_connection(server=server) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name]
        ).fetchone()
    return row is not None


def project_database_names(*, server: str = DEFAULT_SERVER) -> list[str]:
    """Return the names of every project database on the server."""
    with _server_connection(server=server) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'cb\\_proj\\_%%' "
            "ORDER BY datname"
        ).fetchall()
    return [row[0] for row in rows]


def project_database_migrate(
    *,
    database_name: str,
    server: str = DEFAULT_SERVER,
    login: ProjectLogin | None = None,
) -> None:
    """Apply pending per-project migrations to one project database.

    They run as the project's role, so what they create is the role's; the
    untrusted extensions they ask for (pgvector) are created first as the
    admin, because PostgreSQL lets only a superuser create those.
    """
    login = _login_for(database_name, login)
    if login is not None:
        _extensions_create(database_name=database_name, server=server)
    alias = project_database_register(
        database_name=database_name, server=server, login=login
    )
    # Output goes to a buffer: runmcp's stdout is the MCP protocol.
    call_command(
        "migrate",
        _PROJECT_APP,
        database=alias,
        interactive=False,
        verbosity=0,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def project_login_new(*, database_name: str) -> ProjectLogin:
    """Return a fresh login for a project database: its role and a new secret."""
    _check_database_name(database_name)
    return ProjectLogin(role=database_name, secret=secrets.token_urlsafe(32))


@functools.cache
def _required_extensions() -> tuple[str, ...]:
    """Return the extensions the per-project migrations create, in order."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    names: list[str] = []
    for (app, _), migration in sorted(loader.disk_migrations.items()):
        if app != _PROJECT_APP:
            continue
        for operation in migration.operations:
            if isinstance(operation, CreateExtension) and operation.name not in names:
                names.append(operation.name)
    return tuple(names)


@contextmanager
def _admin_project_connection(
    *, database_name: str, server: str
) -> Iterator[psycopg.Connection]:
    """Open an autocommit admin connection to a project database itself."""
    config = _server_settings(server)
    config["NAME"] = database_name
    _server_start(server)
    try:
        conn = psycopg.connect(**_connection_params(config), autocommit=True)
    except psycopg.OperationalError as exc:
        raise ProjectDatabaseUnavailable(
            f"Cannot reach the project database {database_name!r}: {exc}"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def _untrusted_extensions_create(conn: psycopg.Connection) -> None:
    """Create, as the admin, the extensions the migrations need that a role may not.

    Trusted ones (pg_trgm, fuzzystrmatch) are left to the migrations, which
    run as the project's role: it then owns them and can migrate backwards
    too. pgvector is untrusted: only a superuser may create it.
    """
    untrusted = conn.execute(
        "SELECT DISTINCT name FROM pg_available_extension_versions "
        "WHERE name = ANY(%s) AND NOT trusted",
        [list(_required_extensions())],
    ).fetchall()
    for (name,) in untrusted:
        conn.execute(
            sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name))
        )


def _extensions_create(*, database_name: str, server: str) -> None:
    with _admin_project_connection(database_name=database_name, server=server) as conn:
        _untrusted_extensions_create(conn)


# Objects of the public schema that are not part of an extension, with the
# ALTER statement that gives each to another owner. Sequences behind identity
# or serial columns follow their table.
_OWNED_OBJECTS = """
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
       WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
       c.oid::regclass::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND c.relowner <> %(role)s::regrole
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
       ELSE 'FUNCTION' END, p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proowner <> %(role)s::regrole
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
"""


def _role_password(conn: psycopg.Connection, login: ProjectLogin) -> sql.Composable:
    """Return the SCRAM verifier of a login's secret as an SQL literal.

    Computed by libpq on the client: neither the server's statement log nor
    an error message can then show the secret itself.
    """
    verifier = conn.pgconn.encrypt_password(
        login.secret.encode(), login.role.encode(), b"scram-sha-256"
    )
    return sql.Literal(verifier.decode())


def project_role_ensure(
    *, database_name: str, login: ProjectLogin, server: str = DEFAULT_SERVER
) -> None:
    """Give a project database its login role, its privileges and its objects.

    Idempotent: creates the role (or resets the secret of one left by an
    interrupted run), lets only that role and the admin CONNECT, lets the role
    create in the public schema, creates the untrusted extensions the
    migrations need (the role creates trusted ones itself) and hands every object of the public schema outside extensions to the
    role, so that a database made before roles existed is taken over whole.
    """
    _check_database_name(database_name)
    login = _login_for(database_name, login)
    role = sql.Identifier(login.role)
    database = sql.Identifier(database_name)
    with _server_connection(server=server) as conn:
        attributes = sql.SQL(
            " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
            "NOREPLICATION NOBYPASSRLS PASSWORD {}"
        ).format(role, _role_password(conn, login))
        try:
            conn.execute(sql.SQL("CREATE") + attributes)
        except psycopg.errors.DuplicateObject:
            # Left by an interrupted run, or made by a process racing this one.
            conn.execute(sql.SQL("ALTER") + attributes)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(
            # CREATE: trusted extensions need it (and it allows schemas, in
            # this database only).
            sql.SQL("GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}").format(
                database, role
            )
        )
    with _admin_project_connection(database_name=database_name, server=server) as conn:
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(role))
        _untrusted_extensions_create(conn)
        with conn.transaction():
            for kind, name in conn.execute(
                _OWNED_OBJECTS, {"role": login.role}
            ).fetchall():
                # `name` is regclass / regprocedure text: quoted already.
                conn.execute(sql.SQL(f"ALTER {kind} {name} OWNER TO {{}}").format(role))
    # The alias may still log in as the admin (a project given its role now).
    project_database_register(database_name=database_name, server=server, login=login)


def _role_drop(conn: psycopg.Connection, database_name: str) -> None:
    """Drop the login role of a project database, if it has one on this server."""
    try:
        conn.execute(
            sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(database_name))
        )
    except psycopg.Error:
        # It still owns something elsewhere (a copy left by a failed move):
        # the database is gone, which is what was asked; the role is harmless
        # without a database it may CONNECT to.
        logger.warning("the role %s was kept", database_name, exc_info=True)


def project_database_create(
    *,
    database_name: str,
    server: str = DEFAULT_SERVER,
    migrate: bool = True,
    login: ProjectLogin | None = None,
) -> None:
    """Create a project database with its login role, pgvector, migrated.

    On any failure the half-made database (and role) is dropped again, so
    nothing points at a broken database. With `migrate=False` the database
    is left empty, for pg_restore to fill (as `login`). Without `login` the
    database has no role of its own and is reached as the admin.
    """
    _check_database_name(database_name)
    with _server_connection(server=server) as conn:
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database_name))
            )
        except psycopg.errors.DuplicateDatabase as exc:
            raise ProjectDatabaseExists(database_name) from exc
    try:
        if login is not None:
            project_role_ensure(database_name=database_name, login=login, server=server)
        if migrate:
            project_database_migrate(
                database_name=database_name, server=server, login=login
            )
    except Exception as exc:
        logger.warning(
            "provisioning %s failed; dropping it", database_name, exc_info=True
        )
        project_database_drop(database_name=database_name, server=server)
        raise ProvisioningFailed(
            f"Setting up the database {database_name!r} failed and was rolled back: "
            f"{exc}. Check that the server has the pgvector extension and that "
            "its role may create roles (CREATEROLE)."
        ) from exc


def project_database_drop(*, database_name: str, server: str = DEFAULT_SERVER) -> bool:
    """Drop a project database and its role (ending every connection); return if it existed."""
    _check_database_name(database_name)
    # A copy on another server (the old place of a moved project) shares the
    # alias with the live one: leave an alias that points elsewhere alone.
    if project_database_server(database_name=database_name) in (None, server):
        project_database_unregister(database_name=database_name)
    with _server_connection(server=server) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name]
        ).fetchone()
        if row is not None:
            # FORCE ends other processes' pooled connections to the database.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database_name)
                )
            )
        # Its objects went with the database; the role owns nothing else.
        _role_drop(conn, database_name)
    return row is not None


def project_database_size(
    *, database_name: str, server: str = DEFAULT_SERVER
) -> int | None:
    """Return the database's size on disk in bytes, or None when it is missing."""
    with _server_connection(server=server) as conn:
        row = conn.execute(
            "SELECT pg_database_size(datname) FROM pg_database WHERE datname = %s",
            [database_name],
        ).fetchone()
    return int(row[0]) if row else None


def repository_lock_key(repository_path: str) -> int:
    """Return the advisory-lock key an index run of a repository holds.

    pg_advisory_lock takes a signed 64-bit key; the project is implied by the
    database, so the repository path alone names the run. Indexing takes it
    for a run; moves and backups take it to keep runs out while they copy.
    """
    digest = hashlib.blake2b(repository_path.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
