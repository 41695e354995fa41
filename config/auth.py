"""Bearer-token auth of the REST API, the Prometheus endpoint and MCP over HTTP.

A bearer is API_TOKEN (an admin grant over every project) or an API token
of the registry (`manage.py apitoken create`), whose grant is its permission
over its projects (config.access). Tokens are configured when API_TOKEN is
set or any registry token was ever created; until then DEBUG leaves the REST
API open, and the MCP HTTP transport stays open on a loopback address.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from config.access import ADMIN, Grant
from registry.tokens import (
    apitoken_authenticate,
    apitoken_project_ids,
    apitokens_configured,
)


class ApiTokenError(AuthenticationError):
    """Base class: the request may not use the API; answered with 401."""

    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(status_code=401, message=message)


class ApiTokenMissing(ApiTokenError):
    code = "token_missing"

    def __init__(self) -> None:
        super().__init__(
            "This endpoint needs an API token: send `Authorization: Bearer <token>` "
            "with API_TOKEN or a token from `manage.py apitoken create`."
        )


class ApiTokenInvalid(ApiTokenError):
    code = "token_invalid"

    def __init__(self) -> None:
        super().__init__(
            "The bearer token is not API_TOKEN nor a live API token (unknown, "
            "revoked or malformed); send `Authorization: Bearer <token>` with a "
            "current one."
        )


class ApiTokenNotConfigured(ApiTokenError):
    code = "token_not_configured"

    def __init__(self) -> None:
        super().__init__(
            "The API is closed because no token is configured: set API_TOKEN in the "
            "server's environment (or create one with `manage.py apitoken create`) "
            "and send it as `Authorization: Bearer <token>` (or run with DEBUG=true "
            "to use the API without a token locally)."
        )


def tokens_configured() -> bool:
    """Return whether API_TOKEN is set or any registry token was ever created."""
    return bool(settings.API_TOKEN) or apitokens_configured()


def grant_for_bearer(header: str | None, *, open_grant: Grant | None) -> Grant:
    """Return the grant of an `Authorization` header value; raise ApiTokenError (401).

    Without any token configured, return `open_grant` (the interface's choice
    of what an unauthenticated caller may do), or refuse when it is None.
    """
    if not tokens_configured():
        if open_grant is not None:
            return open_grant
        raise ApiTokenNotConfigured()
    header = (header or "").strip()
    if not header:
        raise ApiTokenMissing()
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise ApiTokenInvalid()
    expected = settings.API_TOKEN
    if expected and hmac.compare_digest(value.encode(), expected.encode()):
        return Grant(holder="API_TOKEN", permission=ADMIN)
    token = apitoken_authenticate(plaintext=value)
    if token is None:
        raise ApiTokenInvalid()
    return Grant(
        holder=f"token {token.name!r} ({token.prefix})",
        permission=token.permission,
        project_ids=apitoken_project_ids(token=token),
    )


DEBUG_GRANT = Grant(holder="open API (DEBUG, no token configured)", permission=ADMIN)


class ApiTokenAuth(HttpBearer):
    """Require `Authorization: Bearer <token>`; `request.auth` becomes its Grant.

    Without any token configured the API is open only under DEBUG;
    otherwise every protected endpoint refuses, so a forgotten setting fails
    closed.
    """

    def __call__(self, request: HttpRequest) -> Grant:
        return grant_for_bearer(
            request.headers.get(self.header),
            open_grant=DEBUG_GRANT if settings.DEBUG else None,
        )

    def authenticate(self, request: HttpRequest, token: str) -> Grant | None:
        """Return the grant of `token`, or None when it is not a live token."""
        try:
            return grant_for_bearer(f"Bearer {token}", open_grant=None)
        except ApiTokenError:
            return None
