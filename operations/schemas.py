"""Response schemas of the operations endpoints."""

from __future__ import annotations

from ninja import Schema


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
