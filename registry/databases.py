"""Provision, register and drop project databases at runtime.

This is the only module that touches `django.db.connections` settings. A
project's alias is its database name; its settings are a deep copy of the
registry's (`default`) with NAME changed and a psycopg pool sized by
POOL_MIN_SIZE / POOL_MAX_SIZE. Registration is idempotent, lazy (every process
registers an alias the first time it needs it) and serialised by a lock.
"""

from __future__ import annotations

import copy
import io
import logging
import re
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from registry.exceptions import (
    InvalidProjectName,
    ProjectDatabaseExists,
    ProjectDatabaseUnavailable,
    ProvisioningFailed,
)

logger = logging.getLogger("codebase_mcp.registry")

DATABASE_PREFIX = "cb_proj_"
# PostgreSQL truncates identifiers to 63 bytes; "cb_proj_" + name + "_" + uuid8.
_MAX_IDENTIFIER = 63
_MAX_SANITIZED = _MAX_IDENTIFIER - len(DATABASE_PREFIX) - 1 - 8
_DATABASE_NAME_RE = re.compile(r"^cb_proj_[a-z0-9_]{1,55}$")

_register_lock = threading.RLock()


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
    if not _DATABASE_NAME_RE.match(database_name):
        raise InvalidProjectName(
            f"{database_name!r} is not a project database name (expected "
            "cb_proj_<letters, digits, underscores>)."
        )


def _alias_settings(database_name: str) -> dict:
    config = copy.deepcopy(connections.settings["default"])
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


def project_database_register(*, database_name: str) -> str:
    """Register the connection alias of a project database; return the alias."""
    _check_database_name(database_name)
    if database_name in connections.settings:
        return database_name
    with _register_lock:
        if database_name not in connections.settings:
            connections.settings[database_name] = _alias_settings(database_name)
    return database_name


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


def project_connection(*, database_name: str) -> BaseDatabaseWrapper:
    """Return this thread's connection wrapper for a project database."""
    return connections[project_database_register(database_name=database_name)]


@contextmanager
def _server_connection() -> Iterator[psycopg.Connection]:
    """Open an autocommit connection to the maintenance database `postgres`.

    CREATE/DROP DATABASE cannot run inside a transaction block, and the
    `default` connection may be inside one (admin views, tests).
    """
    params = connections["default"].get_connection_params()
    params.pop("pool", None)
    params["dbname"] = "postgres"
    params.pop("cursor_factory", None)
    params.pop("context", None)
    # Opening `default` once makes the embedded backend start the server.
    connections["default"].ensure_connection()
    try:
        conn = psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as exc:
        raise ProjectDatabaseUnavailable(
            f"Cannot reach the PostgreSQL server that holds project databases: {exc}"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def project_database_exists(*, database_name: str) -> bool:
    """Return whether a database of that name exists on the server."""
    with _server_connection() as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name]
        ).fetchone()
    return row is not None


def project_database_names() -> list[str]:
    """Return the names of every project database on the server."""
    with _server_connection() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'cb\\_proj\\_%%' "
            "ORDER BY datname"
        ).fetchall()
    return [row[0] for row in rows]


def project_database_migrate(*, database_name: str) -> None:
    """Apply pending per-project migrations to one project database."""
    alias = project_database_register(database_name=database_name)
    # Output goes to a buffer: runmcp's stdout is the MCP protocol.
    call_command(
        "migrate",
        "indexing",
        database=alias,
        interactive=False,
        verbosity=0,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def project_database_create(*, database_name: str) -> None:
    """Create a project database, enable pgvector and migrate it.

    On any failure the half-made database is dropped again, so nothing points
    at a broken database.
    """
    _check_database_name(database_name)
    with _server_connection() as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database_name)))
        except psycopg.errors.DuplicateDatabase as exc:
            raise ProjectDatabaseExists(database_name) from exc
    try:
        project_database_migrate(database_name=database_name)
    except Exception as exc:
        logger.warning("provisioning %s failed; dropping it", database_name, exc_info=True)
        project_database_drop(database_name=database_name)
        raise ProvisioningFailed(
            f"Setting up the database {database_name!r} failed and was rolled back: "
            f"{exc}. Check that the server has the pgvector extension."
        ) from exc


def project_database_drop(*, database_name: str) -> bool:
    """Drop a project database (closing every connection to it); return if it existed."""
    _check_database_name(database_name)
    project_database_unregister(database_name=database_name)
    with _server_connection() as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name]
        ).fetchone()
        if row is None:
            return False
        # FORCE ends other processes' pooled connections to the database.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(database_name)
            )
        )
    return True


def project_database_size(*, database_name: str) -> int | None:
    """Return the database's size on disk in bytes, or None when it is missing."""
    with _server_connection() as conn:
        row = conn.execute(
            "SELECT pg_database_size(datname) FROM pg_database WHERE datname = %s",
            [database_name],
        ).fetchone()
    return int(row[0]) if row else None
