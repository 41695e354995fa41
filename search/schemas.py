"""Shapes of the search REST API: the query parameters and the ranked results."""

from __future__ import annotations

from typing import Literal

from ninja import Field, Schema

from registry.schemas import ProjectRefOut, Text
from search.selectors import MAX_LIMIT


class SearchQueryIn(Schema):
    """Query parameters of a search."""

    q: Text = Field(
        description=(
            "What to find: a plain-English description ('where are passwords "
            "hashed') or identifiers ('parseHeader')."
        )
    )
    mode: Literal["hybrid", "semantic", "keyword"] = Field(
        default="hybrid", description="hybrid fuses meaning and keywords."
    )
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    repository: Text | None = Field(
        default=None, description="Only this repository: its id, path or name."
    )
    language: Text | None = Field(
        default=None, description="Only this language, e.g. 'python'."
    )
    file_type: Text | None = Field(
        default=None, description="Only files with this extension, e.g. 'py'."
    )
    directory: Text | None = Field(
        default=None, description="Only under this directory, relative to the root."
    )
    path_glob: Text | None = Field(
        default=None, description="Only paths matching this glob, e.g. 'src/**/*.ts'."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=50,
        description="Cap the answer's size; results are cut to fit.",
    )
    context_lines: int = Field(
        default=3, ge=0, le=50, description="Lines of context around each result."
    )


class SearchResultOut(Schema):
    """One hit: where it is, what it is, and its code with some context."""

    file_path: str = Field(description="Path relative to the repository root.")
    repository: str = Field(description="Absolute path of the repository.")
    repository_id: str
    start_line: int
    end_line: int
    language: str
    symbol: str | None
    kind: str
    score: float
    content: str
    context_before: str
    context_after: str
    stale: bool = Field(description="True when the file changed since it was indexed.")


class SearchOut(Schema):
    """Ranked results plus what a client needs to trust them."""

    results: list[SearchResultOut]
    total_count: int
    latency_ms: float
    mode: str
    embedded_fraction: float = Field(
        description="Share of the project's chunks that have vectors."
    )
    truncated: bool = Field(description="True when max_tokens cut the result list.")
    notes: list[str]
    project: ProjectRefOut
