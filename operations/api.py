"""REST endpoint of the service's own health."""

from __future__ import annotations

from dataclasses import asdict

from django.http import HttpRequest
from ninja import Router

from operations.health import service_health
from operations.schemas import HealthOut

router = Router(tags=["health"])


# The operation id it had when config/api.py served it: clients keep working.
@router.get("/health", auth=None, response=HealthOut, operation_id="config_api_health")
def health(request: HttpRequest) -> dict:
    """Report whether the registry, database server and broker work; never fail."""
    return asdict(service_health())
