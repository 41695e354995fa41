"""Shapes of the registry's REST API: what clients send and what they get back.

`Text` and `Metadata` are the input types every app's schemas share: they turn
values PostgreSQL cannot store (NUL characters, unpaired surrogates, NaN in
JSON) into a 422 at the door instead of a database error behind it.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict, model_validator


def text_check(value: str) -> str:
    """Return `value` if PostgreSQL can store it as text, else raise ValueError."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def _json_check(value: Any) -> None:
    if isinstance(value, str):
        text_check(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must not contain NaN or infinite numbers")
    elif isinstance(value, dict):
        for key, item in value.items():
            text_check(key)
            _json_check(item)
    elif isinstance(value, list):
        for item in value:
            _json_check(item)


def metadata_check(value: dict[str, Any]) -> dict[str, Any]:
    """Return `value` if it can be stored as PostgreSQL jsonb, else raise ValueError."""
    _json_check(value)
    return value


Text = Annotated[str, AfterValidator(text_check)]
Metadata = Annotated[dict[str, Any], AfterValidator(metadata_check)]


class ErrorOut(Schema):
    """The body of every error: a message for people and a code for programs."""

    detail: str = Field(description="What went wrong and what to do next.")
    code: str = Field(description="Stable machine-readable error code.")


class ValidationErrorOut(ErrorOut):
    """The body of a 422: which inputs failed validation and why."""

    errors: list[dict[str, Any]] = Field(
        description="One entry per invalid input, with its location (`loc`)."
    )


def error_responses(*statuses: int) -> dict[int, type[Schema]]:
    """Return an endpoint's documented error responses for `response=`.

    Every protected endpoint may also answer 401 (token), 403 (the token's
    scope does not cover the call), 422 (invalid input) and 503 (database
    server or embedding backend down); the statuses passed are the
    endpoint's own domain errors.
    """
    responses: dict[int, type[Schema]] = dict.fromkeys(
        (*statuses, 401, 403, 503), ErrorOut
    )
    responses[422] = ValidationErrorOut
    return dict(sorted(responses.items()))


class ProjectIn(Schema):
    """A project to create."""

    name: Text = Field(
        description="Unique name, up to 255 characters; must not be a UUID.",
        examples=["billing-service"],
    )
    description: Text = ""
    metadata: Metadata = Field(default_factory=dict)
    server: Text | None = Field(
        default=None,
        description="Database server: `default` or a name from "
        "PROJECT_DATABASE_SERVERS; omitted, the server holding the fewest projects.",
    )


class ProjectPatchIn(Schema):
    """Changes to a project; omitted or null fields stay as they are."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Text | None = None
    description: Text | None = None
    metadata: Metadata | None = Field(
        default=None, description="Replaces the whole metadata object."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> ProjectPatchIn:
        # Also refuses bodies that are not JSON objects (`true`, `[]`): ninja
        # reads schemas from attributes, and those have none of these fields.
        if not self.model_fields_set:
            raise ValueError("send at least one of name, description or metadata")
        return self


class ProjectOut(Schema):
    """A project of the registry."""

    id: uuid.UUID
    name: str
    description: str
    database_name: str = Field(description="The project's own PostgreSQL database.")
    server: str = Field(description="The PostgreSQL server that holds the database.")
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProjectRefOut(Schema):
    """The project that answered a request."""

    id: uuid.UUID
    name: str


class ProjectMoveIn(Schema):
    """Where to move a project's database."""

    server: Text = Field(
        description="Target server: `default` or a name from PROJECT_DATABASE_SERVERS."
    )


class ProjectMoveOut(Schema):
    """What a move did; the project is served from `target` afterwards."""

    project: str
    database_name: str
    source: str
    target: str
    tables: dict[str, int] = Field(description="Rows copied and verified, per table.")
    seconds: float
    old_copy_dropped: bool = Field(
        description="False when the old copy could not be dropped (see warnings)."
    )
    warnings: list[str]


class ProjectRestoreOut(Schema):
    """The project a backup was restored into."""

    project: ProjectOut
    replaced: bool = Field(description="Whether an existing project was replaced.")
    tables: dict[str, int] = Field(description="Rows restored and verified, per table.")
    source_project: str = Field(description="Name of the project that was backed up.")
    warnings: list[str]


class TableMetricsOut(Schema):
    """PostgreSQL's statistics of one table of a project database."""

    name: str
    rows: int = Field(description="Estimated live rows (pg_stat_user_tables).")
    dead_rows: int
    table_bytes: int
    index_bytes: int
    seq_scans: int
    index_scans: int


class ProjectMetricsOut(Schema):
    """A project's size, content, activity and search latency."""

    project_id: uuid.UUID
    name: str
    server: str
    database_name: str
    size_bytes: int = Field(description="pg_database_size of the project database.")
    index_bytes: int
    repositories: int
    files: int
    chunks: int
    embedded_chunks: int
    embedded_fraction: float
    embedding_model: str | None
    last_indexed_at: datetime | None
    files_changed: int = Field(
        description="Indexed files changed or gone on disk since indexing."
    )
    repositories_watched: int = Field(description="Repositories a watcher keeps fresh.")
    queries_served: int = Field(description="Searches served since the project began.")
    queries_by_mode: dict[str, int]
    search_ms_total: float
    search_latency_p50_ms: float | None = Field(
        description="Median latency of the latest searches (up to 1000 of each mode)."
    )
    search_latency_p95_ms: float | None
    latency_samples: int
    connections: int = Field(description="Open connections to the project database.")
    transactions_committed: int
    transactions_rolled_back: int
    blocks_read: int
    blocks_hit: int
    cache_hit_ratio: float | None
    deadlocks: int
    tables: list[TableMetricsOut]
