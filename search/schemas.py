"""Shapes of the search REST API: the query parameters and the ranked results."""

from __future__ import annotations

from typing import Literal

from ninja import Field, Schema
from pydantic import BaseModel

from registry.schemas import ProjectRefOut, Text
from search.grep import (
    DEFAULT_MAX_MATCHES,
    DEFAULT_MAX_PER_FILE,
    MAX_CONTEXT_LINES,
    MAX_MATCHES,
    MAX_PER_FILE,
)
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
    container: str | None = Field(
        default=None, description="For a method: its class (or impl, struct...)."
    )


class FederatedResultOut(SearchResultOut):
    """One hit of a search over several projects."""

    project: str = Field(description="The project holding the hit.")


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


# Navigation answers. Plain pydantic models, so the MCP tools (mcp_bridge)
# return the same typed shapes as the REST endpoints.


class SymbolOut(BaseModel):
    """One definition: what it is, where, its signature, doc and head of body."""

    name: str
    qualified_name: str = Field(description="Class.method, pkg.Func, Type.method...")
    kind: str = Field(description="function, method, class, struct, constant...")
    parent: str | None = Field(description="Qualified name of the enclosing one.")
    language: str
    repository: str
    repository_id: str
    file_path: str = Field(description="Path relative to the repository root.")
    start_line: int
    end_line: int
    signature: str
    doc: str = Field(description="Docstring or leading comment; empty if none.")
    body: str = Field(description="The first body_lines lines of the definition.")
    body_lines_cut: int = Field(description="Lines of the body not shown.")
    match: str = Field(description="name | qualified | case | prefix | fuzzy")
    stale: bool = Field(description="True when the file changed since indexing.")
    project: str | None = Field(
        default=None, description="The definition's project, when several are asked."
    )


class NameCountOut(BaseModel):
    name: str
    definitions: int


class SymbolSearchOut(BaseModel):
    """Definitions of a name, best first, or the names it may have meant."""

    query: str
    match: str
    symbols: list[SymbolOut]
    total: int = Field(description="Definitions matching, shown or not.")
    suggestions: list[NameCountOut] = Field(
        description="Closest defined names when nothing matched."
    )
    notes: list[str]


class ReferenceOut(BaseModel):
    line: int
    column: int = Field(description="1-based, in characters.")
    kind: str = Field(description="call | attribute | type | import | name")
    text: str = Field(description="The line, stripped; empty when the file is stale.")
    container: str | None = Field(description="Enclosing definition, qualified.")


class FileReferencesOut(BaseModel):
    repository: str
    file_path: str
    total: int = Field(description="Uses in this file, shown or not.")
    references: list[ReferenceOut]
    stale: bool


class DefinitionRefOut(BaseModel):
    qualified_name: str
    kind: str
    repository: str
    file_path: str
    start_line: int
    end_line: int


class ReferenceSearchOut(BaseModel):
    """Where a name is used, grouped by file, and the definitions carrying it."""

    query: str
    name: str = Field(description="The name uses are matched by.")
    definitions: list[DefinitionRefOut]
    files: list[FileReferencesOut]
    total_references: int
    total_files: int
    truncated: bool
    notes: list[str]


class OutlineNodeOut(BaseModel):
    name: str
    qualified_name: str
    kind: str
    signature: str
    start_line: int
    end_line: int
    children: list[OutlineNodeOut]


class FileOutlineOut(BaseModel):
    """A file's definitions as a tree, without bodies."""

    repository: str
    file_path: str
    language: str
    lines: int | None
    symbols: list[OutlineNodeOut]
    total: int
    stale: bool
    notes: list[str]


class SymbolQueryIn(Schema):
    """Query parameters of a definition lookup."""

    name: Text = Field(description="Identifier or qualified name, e.g. Parser.parse.")
    kind: Text | None = Field(default=None, description="function, class, method...")
    language: Text | None = None
    repository: Text | None = None
    path_glob: Text | None = None
    match: Literal["exact", "prefix", "fuzzy"] = "exact"
    limit: int = Field(default=10, ge=1, le=200)
    body_lines: int = Field(default=40, ge=0, le=400)


class ReferenceQueryIn(Schema):
    """Query parameters of a reference lookup."""

    name: Text = Field(description="Identifier or qualified name.")
    kind: Literal["call", "attribute", "type", "import", "name"] | None = None
    language: Text | None = None
    repository: Text | None = None
    path_glob: Text | None = None
    directory: Text | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    per_file: int = Field(default=20, ge=1, le=200)


class GrepMatchOut(BaseModel):
    """One matching line."""

    line: int
    column: int = Field(description="1-based, in characters, of the first match.")
    text: str = Field(description="The line as indexed (long lines: around the match).")
    context_before: list[str]
    context_after: list[str]
    symbol: str | None = Field(description="Innermost definition around the line.")
    symbol_kind: str | None


class GrepFileOut(BaseModel):
    file_path: str = Field(description="Path relative to the repository root.")
    repository: str
    repository_id: str
    language: str
    matches: list[GrepMatchOut]
    total: int = Field(description="Matching lines of this file, shown or not.")
    stale: bool = Field(description="True when the file changed since indexing.")
    project: str | None = Field(
        default=None, description="The file's project, when several are asked."
    )


class GrepSearchOut(BaseModel):
    """Matching lines grouped by file, with totals and how the search ran."""

    pattern: str
    regex: bool
    case_sensitive: bool
    whole_word: bool
    files: list[GrepFileOut]
    files_matched: int
    matches: int = Field(description="Matching lines in all (see totals_exact).")
    matches_shown: int
    truncated: bool = Field(description="True when not every matching line is shown.")
    totals_exact: bool = Field(
        description="False when counting stopped early: totals are lower bounds."
    )
    indexed: bool = Field(
        description="False when no trigram could narrow the pattern (full scan)."
    )
    candidate_files: int = Field(description="Files the trigram index picked.")
    files_scanned: int
    elapsed_ms: float
    notes: list[str]


class GrepQueryIn(Schema):
    """Query parameters of an exact search."""

    pattern: Text = Field(description="Text to find, or an RE2 regex with regex=true.")
    regex: bool = False
    case_sensitive: bool = True
    whole_word: bool = False
    repository: Text | None = None
    language: Text | None = None
    file_type: Text | None = Field(default=None, description="Extension, e.g. 'py'.")
    directory: Text | None = None
    path_glob: Text | None = None
    context_lines: int = Field(default=0, ge=0, le=MAX_CONTEXT_LINES)
    max_matches: int = Field(default=DEFAULT_MAX_MATCHES, ge=1, le=MAX_MATCHES)
    max_per_file: int = Field(default=DEFAULT_MAX_PER_FILE, ge=1, le=MAX_PER_FILE)


class GrepSearchResponse(GrepSearchOut):
    project: ProjectRefOut


class SymbolSearchResponse(SymbolSearchOut):
    project: ProjectRefOut


class ReferenceSearchResponse(ReferenceSearchOut):
    project: ProjectRefOut


class FileOutlineResponse(FileOutlineOut):
    project: ProjectRefOut


# Calls over several projects (search.federation).


class ProjectOutcomeOut(BaseModel):
    """How one project of a call over several projects answered."""

    name: str
    id: str
    status: Literal["ok", "failed", "timed_out"]
    hits: int = Field(description="Results (or matching lines) it gave.")
    latency_ms: float
    note: str | None = Field(description="Why it gave nothing, when it did not answer.")


class ProjectsQueryIn(Schema):
    """The projects of a call over several projects."""

    projects: list[Text] = Field(
        description="Project names or ids: repeat the parameter or separate them "
        "with commas (a name holding a comma: give its id). Duplicates count "
        "once; at most 20 projects."
    )


class FederatedSearchOut(Schema):
    """Ranked results of several projects, each hit labelled with its project."""

    results: list[FederatedResultOut]
    total_count: int
    latency_ms: float
    mode: str
    embedded_fraction: float = Field(
        description="The lowest share of chunks with vectors among the projects."
    )
    truncated: bool
    notes: list[str]
    projects: list[ProjectOutcomeOut]


class FederatedSymbolOut(SymbolSearchOut):
    projects: list[ProjectOutcomeOut]


class FederatedGrepOut(GrepSearchOut):
    projects: list[ProjectOutcomeOut]
