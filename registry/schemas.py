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

    Every protected endpoint may also answer 401 (token), 422 (invalid input)
    and 503 (database server or embedding backend down); the statuses passed
    are the endpoint's own domain errors.
    """
    responses: dict[int, type[Schema]] = {
        status: ErrorOut for status in (*statuses, 401, 503)
    }
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
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProjectRefOut(Schema):
    """The project that answered a request."""

    id: uuid.UUID
    name: str
