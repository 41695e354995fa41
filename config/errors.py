"""Map every error to JSON `{detail, code}` with the HTTP status it deserves.

Domain errors of the apps map to 400/404/409 (503 when the server side is
down), auth failures to 401, invalid input to 422 with the failing fields
listed under `errors`, anything else to 500 with the details in the log.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from indexing.exceptions import (
    EmbeddingFailed,
    EmbeddingModelMismatch,
    IndexingError,
    IndexingInProgress,
    IndexJobNotFound,
)
from registry.exceptions import (
    AccessDenied,
    ProjectAlreadyExists,
    ProjectDatabaseExists,
    ProjectDatabaseUnavailable,
    ProjectNotFound,
    ProjectOperationFailed,
    ProjectOperationRefused,
    ProvisioningFailed,
    RegistryError,
)
from search.exceptions import (
    ProjectSchemaOutdated,
    SearchError,
    UnknownFile,
    UnknownRepository,
)

logger = logging.getLogger("codebase_mcp.api")

# First match wins: specific classes before the app base classes.
_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (AccessDenied, 403),
    (ProjectNotFound, 404),
    (IndexJobNotFound, 404),
    (UnknownRepository, 404),
    (UnknownFile, 404),
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


def _error(
    request: HttpRequest,
    *,
    api: NinjaAPI,
    status: int,
    detail: str,
    code: str,
    **extra: Any,
) -> HttpResponse:
    return api.create_response(
        request, {"detail": detail, "code": code, **extra}, status=status
    )


def _domain_error(
    request: HttpRequest, exc: Exception, *, api: NinjaAPI
) -> HttpResponse:
    status = next(code for kind, code in _DOMAIN_STATUS if isinstance(exc, kind))
    return _error(request, api=api, status=status, detail=str(exc), code=exc.code)


def _auth_error(
    request: HttpRequest, exc: AuthenticationError, *, api: NinjaAPI
) -> HttpResponse:
    response = _error(
        request,
        api=api,
        status=401,
        detail=str(exc),
        code=getattr(exc, "code", "unauthorized"),
    )
    response["WWW-Authenticate"] = 'Bearer realm="codebase-mcp"'
    return response


def _http_error(request: HttpRequest, exc: HttpError, *, api: NinjaAPI) -> HttpResponse:
    return _error(
        request,
        api=api,
        status=exc.status_code,
        detail=str(exc),
        code=_HTTP_CODES.get(exc.status_code, "http_error"),
    )


def _not_found(request: HttpRequest, exc: Http404, *, api: NinjaAPI) -> HttpResponse:
    return _error(request, api=api, status=404, detail="Not found.", code="not_found")


def _validation_error(
    request: HttpRequest, exc: ValidationError, *, api: NinjaAPI
) -> HttpResponse:
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg')}"
        for error in exc.errors
    ]
    return _error(
        request,
        api=api,
        status=422,
        detail="Invalid input: " + "; ".join(problems),
        code="validation_error",
        errors=exc.errors,
    )


def _unexpected_error(
    request: HttpRequest, exc: Exception, *, api: NinjaAPI
) -> HttpResponse:
    logger.error("%s %s failed", request.method, request.path, exc_info=exc)
    return _error(
        request,
        api=api,
        status=500,
        detail="Internal error; the server log has the details.",
        code="internal_error",
    )


def exception_handlers_add(*, api: NinjaAPI) -> None:
    """Register the handlers on `api`; ninja picks the nearest class of an error."""
    for kind in (RegistryError, IndexingError, SearchError):
        api.add_exception_handler(kind, partial(_domain_error, api=api))
    api.add_exception_handler(AuthenticationError, partial(_auth_error, api=api))
    api.add_exception_handler(HttpError, partial(_http_error, api=api))
    api.add_exception_handler(Http404, partial(_not_found, api=api))
    api.add_exception_handler(ValidationError, partial(_validation_error, api=api))
    api.add_exception_handler(Exception, partial(_unexpected_error, api=api))
