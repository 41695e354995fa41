"""The REST API: one NinjaAPI, its bearer-token auth, error mapping and health.

Every error leaves as JSON `{detail, code}`: domain errors of the apps map to
400/404/409 (503 when the server side is down), auth failures to 401, invalid
input to 422 with the failing fields listed under `errors`.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from indexing.api import router as indexing_router
from indexing.exceptions import (
    EmbeddingFailed,
    EmbeddingModelMismatch,
    IndexingError,
    IndexingInProgress,
    IndexJobNotFound,
)
from registry.api import router as registry_router
from registry.dbserver import server_layout, server_status
from registry.exceptions import (
    ProjectAlreadyExists,
    ProjectDatabaseExists,
    ProjectDatabaseUnavailable,
    ProjectNotFound,
    ProjectOperationFailed,
    ProjectOperationRefused,
    ProvisioningFailed,
    RegistryError,
)
from registry.selectors import project_list
from search.api import router as search_router
from search.exceptions import ProjectSchemaOutdated, SearchError, UnknownRepository

logger = logging.getLogger("codebase_mcp.api")

BROKER_PING_TIMEOUT = 2.0

# First match wins: specific classes before the app base classes.
_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ProjectNotFound, 404),
    (IndexJobNotFound, 404),
    (UnknownRepository, 404),
    (ProjectAlreadyExists, 409),
    (ProjectDatabaseExists, 409),
    (IndexingInProgress, 409),
    (EmbeddingModelMismatch, 409),
    (ProjectOperationRefused, 409),
    # The request was fine; the database server or embedding backend is not.
    (ProjectDatabaseUnavailable, 503),
    (ProvisioningFailed, 503),
    (EmbeddingFailed, 503),
    (ProjectOperationFailed, 503),
    (ProjectSchemaOutdated, 503),
    (RegistryError, 400),
    (IndexingError, 400),
    (SearchError, 400),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "throttled",
}


class ApiTokenError(AuthenticationError):
    """Base class: the request may not use the API; answered with 401."""

    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(status_code=401, message=message)


class ApiTokenMissing(ApiTokenError):
    code = "token_missing"

    def __init__(self) -> None:
        super().__init__(
            "This endpoint needs the API token: send `Authorization: Bearer <token>` "
            "with the value of API_TOKEN."
        )


class ApiTokenInvalid(ApiTokenError):
    code = "token_invalid"

    def __init__(self) -> None:
        super().__init__(
            "The bearer token does not match API_TOKEN; send "
            "`Authorization: Bearer <token>` with its current value."
        )


class ApiTokenNotConfigured(ApiTokenError):
    code = "token_not_configured"

    def __init__(self) -> None:
        super().__init__(
            "The API is closed because API_TOKEN is not set: set API_TOKEN in the "
            "server's environment and send it as `Authorization: Bearer <token>` "
            "(or run with DEBUG=true to use the API without a token locally)."
        )


class ApiTokenAuth(HttpBearer):
    """Require `Authorization: Bearer <API_TOKEN>`.

    Without API_TOKEN the API is open only under DEBUG; otherwise every
    protected endpoint refuses, so a forgotten setting fails closed.
    """

    def __call__(self, request: HttpRequest) -> str:
        expected = settings.API_TOKEN
        if not expected:
            if settings.DEBUG:
                return "debug-open"
            raise ApiTokenNotConfigured()
        header = request.headers.get(self.header, "")
        if not header.strip():
            raise ApiTokenMissing()
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != self.openapi_scheme or not self.authenticate(
            request, token.strip()
        ):
            raise ApiTokenInvalid()
        return "api-token"

    def authenticate(self, request: HttpRequest, token: str) -> bool:
        """Return whether `token` is API_TOKEN, in constant time."""
        return hmac.compare_digest(token.encode(), settings.API_TOKEN.encode())


api = NinjaAPI(
    title="Codebase MCP",
    version="1",
    description=(
        "Semantic code search over projects, each with its own database. Send "
        "`Authorization: Bearer <API_TOKEN>` on every endpoint but /health. "
        "Errors are JSON `{detail, code}`; invalid input answers 422 with `errors`."
    ),
    auth=ApiTokenAuth(),
    urls_namespace="api",
)
api.add_router("", registry_router)
api.add_router("", indexing_router)
api.add_router("", search_router)


def _error(
    request: HttpRequest, *, status: int, detail: str, code: str, **extra: Any
) -> HttpResponse:
    return api.create_response(
        request, {"detail": detail, "code": code, **extra}, status=status
    )


def _domain_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    status = next(code for kind, code in _DOMAIN_STATUS if isinstance(exc, kind))
    return _error(request, status=status, detail=str(exc), code=exc.code)


def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(
        request,
        status=401,
        detail=str(exc),
        code=getattr(exc, "code", "unauthorized"),
    )
    response["WWW-Authenticate"] = 'Bearer realm="codebase-mcp"'
    return response


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(
        request,
        status=exc.status_code,
        detail=str(exc),
        code=_HTTP_CODES.get(exc.status_code, "http_error"),
    )


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, status=404, detail="Not found.", code="not_found")


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg')}"
        for error in exc.errors
    ]
    return _error(
        request,
        status=422,
        detail="Invalid input: " + "; ".join(problems),
        code="validation_error",
        errors=exc.errors,
    )


def _unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.error("%s %s failed", request.method, request.path, exc_info=exc)
    return _error(
        request,
        status=500,
        detail="Internal error; the server log has the details.",
        code="internal_error",
    )


for _kind in (RegistryError, IndexingError, SearchError):
    api.add_exception_handler(_kind, _domain_error)
api.add_exception_handler(AuthenticationError, _auth_error)
api.add_exception_handler(HttpError, _http_error)
api.add_exception_handler(Http404, _not_found)
api.add_exception_handler(ValidationError, _validation_error)
api.add_exception_handler(Exception, _unexpected_error)


class CheckOut(Schema):
    """One dependency of the service and whether it works."""

    ok: bool
    detail: str


class DatabaseServerOut(CheckOut):
    embedded: bool
    running: bool | None
    version: str | None


class BrokerOut(CheckOut):
    configured: bool


class HealthOut(Schema):
    """Whether the service and what it depends on work; `ok` is all of them."""

    ok: bool
    registry: CheckOut
    database_server: DatabaseServerOut
    broker: BrokerOut


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _database_server_check() -> DatabaseServerOut:
    if not settings.EMBEDDED_DATABASE:
        return DatabaseServerOut(
            ok=True,
            detail="External PostgreSQL server; see the registry check.",
            embedded=False,
            running=None,
            version=None,
        )
    try:
        status = server_status(layout=server_layout(home=settings.CODEBASE_MCP_HOME))
    except Exception as exc:
        return DatabaseServerOut(
            ok=False, detail=_failure(exc), embedded=True, running=None, version=None
        )
    running = bool(status["running"])
    return DatabaseServerOut(
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


def _registry_check() -> CheckOut:
    try:
        count = len(project_list())
    except Exception as exc:
        return CheckOut(ok=False, detail=_failure(exc))
    return CheckOut(ok=True, detail=f"The registry answers; it holds {count} projects.")


def _broker_check() -> BrokerOut:
    url = settings.CELERY_BROKER_URL
    if not url:
        return BrokerOut(
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
        return BrokerOut(ok=False, configured=True, detail=detail)
    return BrokerOut(ok=True, configured=True, detail="The broker answers.")


@api.get("/health", auth=None, response=HealthOut, tags=["health"])
def health(request: HttpRequest) -> HealthOut:
    """Report whether the registry, database server and broker work; never fail."""
    database_server = _database_server_check()
    registry = _registry_check()
    broker = _broker_check()
    return HealthOut(
        ok=registry.ok and database_server.ok and broker.ok,
        registry=registry,
        database_server=database_server,
        broker=broker,
    )
