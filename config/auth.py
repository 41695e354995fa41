"""Bearer-token auth of the REST API and the Prometheus endpoint."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer


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
