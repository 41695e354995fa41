"""Check whether the service and what it depends on work.

Each check reports rather than raises: a health probe must answer even when
everything behind it is down.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from registry.dbserver import server_layout, server_status
from registry.selectors import project_list

# Seconds a broker may take to accept a connection before it counts as down.
BROKER_PING_TIMEOUT = 2.0


@dataclass
class Check:
    """One dependency of the service and whether it works."""

    ok: bool
    detail: str


@dataclass
class DatabaseServerCheck(Check):
    embedded: bool
    running: bool | None
    version: str | None


@dataclass
class BrokerCheck(Check):
    configured: bool


@dataclass
class ServiceHealth:
    """Whether the service and what it depends on work; `ok` is all of them."""

    ok: bool
    registry: Check
    database_server: DatabaseServerCheck
    broker: BrokerCheck


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def database_server_check() -> DatabaseServerCheck:
    """Report whether the embedded PostgreSQL server runs (external: see registry)."""
    if not settings.EMBEDDED_DATABASE:
        return DatabaseServerCheck(
            ok=True,
            detail="External PostgreSQL server; see the registry check.",
            embedded=False,
            running=None,
            version=None,
        )
    try:
        status = server_status(layout=server_layout(home=settings.CODEBASE_MCP_HOME))
    except Exception as exc:
        return DatabaseServerCheck(
            ok=False, detail=_failure(exc), embedded=True, running=None, version=None
        )
    running = bool(status["running"])
    return DatabaseServerCheck(
        ok=running,
        detail=(
            "The embedded PostgreSQL server accepts connections."
            if running
            else "The embedded PostgreSQL server is not running; it starts on the "
            "next database connection, or run `manage.py dbserver start`."
        ),
        embedded=True,
        running=running,
        version=status["major_version"],
    )


def registry_check() -> Check:
    """Report whether the registry database answers."""
    try:
        count = len(project_list())
    except Exception as exc:
        return Check(ok=False, detail=_failure(exc))
    return Check(ok=True, detail=f"The registry answers; it holds {count} projects.")


def broker_check() -> BrokerCheck:
    """Report whether the Celery broker, when one is configured, accepts a connection."""
    url = settings.CELERY_BROKER_URL
    if not url:
        return BrokerCheck(
            ok=True,
            configured=False,
            detail="No CELERY_BROKER_URL: jobs run in threads of this process.",
        )
    from kombu import Connection
    from kombu.utils.url import maybe_sanitize_url

    try:
        with Connection(
            url,
            connect_timeout=BROKER_PING_TIMEOUT,
            transport_options={
                "socket_timeout": BROKER_PING_TIMEOUT,
                "socket_connect_timeout": BROKER_PING_TIMEOUT,
            },
        ) as connection:
            # No retries: a health probe reports the first failure at once.
            connection.ensure_connection(max_retries=0, timeout=BROKER_PING_TIMEOUT)
    except Exception as exc:
        # The URL may carry a password; never echo it.
        detail = _failure(exc).replace(url, maybe_sanitize_url(url))
        return BrokerCheck(ok=False, configured=True, detail=detail)
    return BrokerCheck(ok=True, configured=True, detail="The broker answers.")


def service_health() -> ServiceHealth:
    """Check the registry, the database server and the broker; never raise."""
    database_server = database_server_check()
    registry = registry_check()
    broker = broker_check()
    return ServiceHealth(
        ok=registry.ok and database_server.ok and broker.ok,
        registry=registry,
        database_server=database_server,
        broker=broker,
    )
