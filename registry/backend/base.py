"""PostgreSQL backend that starts the embedded server before connecting."""

import logging

from django.conf import settings
from django.db.backends.postgresql import base

from registry.dbserver import server_ensure, server_layout

logger = logging.getLogger("codebase_mcp.dbserver")


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
        try:
            return super().get_new_connection(conn_params)
        except Exception as exc:
            if not self._missing_registry(exc):
                server_ensure(layout=layout)
                if self.pool is not None:
                    self._connect_directly(conn_params)
                return super().get_new_connection(conn_params)
            self._create_registry_database()
            return super().get_new_connection(conn_params)

    def _connect_directly(self, conn_params) -> None:
        """Raise the error a plain connection gets, if it gets one.

        A pool that cannot connect only says it timed out after POOL_TIMEOUT;
        one direct attempt tells why (a dropped database, a refused login) at
        once, instead of a second wait for the same timeout.
        """
        self.Database.connect(**conn_params).close()

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

