"""PostgreSQL backend that starts the embedded server before connecting."""

import logging

from django.conf import settings
from django.db.backends.postgresql import base

from registry.dbserver import server_ensure, server_layout
from registry.exceptions import ProjectDatabaseUnavailable

logger = logging.getLogger("codebase_mcp.dbserver")

# Per connection alias: the pool's connection error count when it last
# handed out a connection.
_pool_errors_seen: dict[str, int] = {}


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL wrapper, plus: the embedded server is always up.

    The server is checked lazily, when a connection is opened, so every process
    (runmcp, runserver, a worker, tests) starts or finds it without a separate
    step, and a server that was stopped while a process kept running is
    started again on that process's next connection.
    """

    def get_new_connection(self, conn_params):
        layout = server_layout(home=settings.CODEBASE_MCP_HOME)
        if not layout.socket_file.exists():
            server_ensure(layout=layout)
        if self.pool is not None and self._pool_failing():
            # The pool has failed to connect since it last served and has
            # nothing to give: one direct attempt fails (or succeeds) at
            # once, where the pool would wait POOL_TIMEOUT for each call.
            self._connect_directly(conn_params)
        try:
            connection = super().get_new_connection(conn_params)
        except Exception as exc:
            if not self._missing_registry(exc):
                server_ensure(layout=layout)
                if self.pool is not None:
                    self._connect_directly(conn_params)
                connection = super().get_new_connection(conn_params)
            else:
                self._create_registry_database()
                connection = super().get_new_connection(conn_params)
        if self.pool is not None:
            _pool_errors_seen[self.alias] = self._pool_errors()
        return connection

    def _pool_errors(self) -> int:
        return int(self.pool.get_stats().get("connections_errors", 0))

    def _pool_failing(self) -> bool:
        stats = self.pool.get_stats()
        return stats.get("pool_available", 0) == 0 and int(
            stats.get("connections_errors", 0)
        ) > _pool_errors_seen.get(self.alias, 0)

    def _connect_directly(self, conn_params) -> None:
        """Raise the error a plain connection gets, if it gets one.

        A pool that cannot connect only says it timed out after POOL_TIMEOUT;
        one direct attempt tells why (a dropped database, a refused login) at
        once. For a project database the error says what to do about it.
        """
        try:
            self.Database.connect(**conn_params).close()
        except self.Database.OperationalError as exc:
            if self.alias == "default":
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc
            raise ProjectDatabaseUnavailable(
                f"The project database {self.settings_dict['NAME']!r} cannot be "
                f"reached ({reason}). If it was dropped, restore the project from a "
                "backup (`manage.py restoreproject FILE --replace`) or delete it "
                "(`manage.py dropproject NAME`); if its server is down, start it."
            ) from exc

    def _missing_registry(self, exc: Exception) -> bool:
        """Return whether `exc` says the registry database does not exist yet."""
        return (
            self.alias == "default"
            and self.settings_dict["NAME"] == settings.REGISTRY_DATABASE_NAME
            and "does not exist" in str(exc)
        )

    def _create_registry_database(self) -> None:
        import psycopg
        from psycopg import sql

        params = self.get_connection_params()
        params.pop("pool", None)
        params["dbname"] = "postgres"
        with psycopg.connect(**params, autocommit=True) as conn:
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(
                        sql.Identifier(settings.REGISTRY_DATABASE_NAME)
                    )
                )
            except psycopg.errors.DuplicateDatabase:
                pass
        logger.info("created registry database %s", settings.REGISTRY_DATABASE_NAME)
