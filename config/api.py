"""The REST API: one NinjaAPI, its bearer-token auth, the routers it mounts.

Every route but /health needs `Authorization: Bearer <API_TOKEN>`
(config.auth); every error leaves as JSON `{detail, code}` (config.errors).
"""

from __future__ import annotations

from ninja import NinjaAPI

from config.auth import ApiTokenAuth
from config.errors import exception_handlers_add
from indexing.api import router as indexing_router
from operations.api import router as operations_router
from registry.api import router as registry_router
from search.api import router as search_router

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
api.add_router("", operations_router)
exception_handlers_add(api=api)
