"""The MCP server: tools that index and search code, per session.

Tools are sync functions (the SDK runs them in worker threads, where the ORM
is usable). Each call parses its arguments, resolves the project, calls one
service or selector and shapes a typed result. Domain errors become MCP tool
errors with their message; nothing here writes to stdout.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import threading
import time
import weakref
from typing import Annotated, Literal

import anyio.from_thread
from django.db import close_old_connections, connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.access import (
    ADMIN,
    LOCAL,
    READ,
    WRITE,
    Grant,
    access_require,
    job_for,
    permission_includes,
    projects_readable,
    token_allows,
)
from config.auth import ApiTokenError, grant_for_bearer
from indexing.exceptions import IndexingError
from indexing.jobs import index_job_start
from indexing.schemas import RefreshedOut, RepositoryOut
from indexing.selectors import (
    embedding_progress_text,
    index_job_as_dict,
    project_status,
)
from indexing.services import IndexProgress, repositories_refresh, repository_index
from mcp_bridge import renderings
from mcp_bridge.resolution import (
    ResolvedProject,
    project_resolve,
    projects_resolve,
    session_config_find,
)
from mcp_bridge.schemas import (
    FileOutlineResult,
    FindReferencesResult,
    FindSymbolResult,
    GrepCodeResult,
    IndexResult,
    JobStarted,
    JobStatus,
    ProjectInfo,
    ProjectList,
    ProjectRef,
    ProjectStatusResult,
    RefreshResult,
    SearchCodeResult,
    SearchHit,
    WorkingDirectoryResult,
)
from registry.exceptions import AccessDenied, ProjectNotFound, RegistryError
from registry.models import Project
from registry.selectors import MAX_PROJECTS, project_list
from registry.services import project_create
from search.exceptions import SearchError
from search.federation import (
    chunk_search_federated,
    code_grep_federated,
    symbol_find_federated,
)
from search.grep import (
    DEFAULT_MAX_MATCHES,
    DEFAULT_MAX_PER_FILE,
    MAX_CONTEXT_LINES,
    MAX_MATCHES,
    MAX_PER_FILE,
    code_grep,
)
from search.navigation import file_outline as outline_file
from search.navigation import file_text_read, reference_find, symbol_find
from search.selectors import MAX_LIMIT, chunk_search

logger = logging.getLogger("codebase_mcp.mcp")

INSTRUCTIONS = (
    "Codebase MCP finds code by meaning and by name. Call set_working_directory "
    "once with the user's project folder, index_repository (or "
    "start_indexing_background for big repositories), then search_code with a "
    "plain-English description, find_symbol for where a name is defined, "
    "find_references for who uses it, grep_code for every line matching a "
    "text or regex, and file_outline to see a file's definitions before "
    "reading it."
)

server = MCPServer("codebase-mcp", instructions=INSTRUCTIONS)

ProjectIdArg = Annotated[
    str | None,
    Field(
        description=(
            "Project UUID or name. Omit to use the project of the session's working "
            "directory (.codebase-mcp/config.json), then workflow-mcp, then 'default'."
        )
    ),
]

ProjectsArg = Annotated[
    list[str] | None,
    Field(
        description=(
            f"Ask these projects at once (names or UUIDs, at most {MAX_PROJECTS}) "
            "instead of one: answers are merged and each hit names its project; a "
            "project that fails or is slow becomes a note. Not with project_id."
        )
    ),
]


class _Sessions:
    """Remember each MCP client's working directory.

    Over legacy sessions a client is its connection (or its `mcp-session-id`
    over HTTP). On the stateless 2026-07-28 protocol every request arrives on
    a connection of its own, so a process that serves a single client (stdio,
    in-memory) also keeps the last directory set as its own default; a shared
    HTTP server does not, so that no client inherits another's project.
    """

    def __init__(self) -> None:
        self._directories: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._by_header: dict[str, str] = {}
        self._process_default: str | None = None
        self._lock = threading.Lock()
        self.single_client = True

    def get(self, ctx: Context | None) -> str:
        key, connection = _session_keys(ctx)
        with self._lock:
            directory = (
                (self._by_header.get(key) if key else None)
                or (
                    self._directories.get(connection)
                    if connection is not None
                    else None
                )
                or (self._process_default if self.single_client else None)
            )
        # Clients such as Claude Code start the server in the user's project.
        return directory or os.getcwd()

    def set(self, ctx: Context | None, directory: str) -> None:
        key, connection = _session_keys(ctx)
        with self._lock:
            if key:
                self._by_header[key] = directory
            if connection is not None:
                self._directories[connection] = directory
            if self.single_client:
                self._process_default = directory
            elif not key and connection is None:
                raise ToolError(
                    "This call carries no MCP session to remember a directory for; "
                    "pass project_id to each tool instead."
                )


def _session_keys(ctx: Context | None) -> tuple[str | None, object | None]:
    """Return (the HTTP session id, the connection object) of a request.

    The SDK builds a new ServerSession proxy per request; the connection it
    wraps is what stays the same across one client's calls on a legacy session.
    """
    if ctx is None:
        return None, None
    try:
        session = ctx.session
    except (AttributeError, ValueError, LookupError):
        session = None
    try:
        headers = ctx.headers or {}
    except (AttributeError, ValueError, LookupError):
        headers = {}
    key = headers.get("mcp-session-id") if hasattr(headers, "get") else None
    connection = (
        getattr(session, "_connection", session) if session is not None else None
    )
    return key, connection


sessions = _Sessions()

_DOMAIN_ERRORS = (RegistryError, IndexingError, SearchError)


def _tool_call(function):
    """Keep each call's database use clean and turn domain errors into tool errors."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        except ToolError:
            raise
        except _DOMAIN_ERRORS as exc:
            raise ToolError(str(exc)) from exc
        finally:
            # Return this worker thread's connections to their pools: a thread
            # may not serve the next call, and a pooled connection is shared.
            connections.close_all()

    return wrapper


def _answer(result: BaseModel, text: str) -> CallToolResult:
    """Return the typed result for programs and its compact rendering for the model."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=result.model_dump(mode="json", by_alias=True),
    )


def _cut(what: str):
    """Return how a result cut to fit max_tokens records it."""

    def mark(result: BaseModel, dropped: int) -> None:
        if "truncated" in type(result).model_fields:
            result.truncated = True
        result.notes.append(
            f"{dropped} more {what} left out to fit max_tokens; raise max_tokens "
            "or narrow the call."
        )

    return mark


OutputArg = Annotated[
    Literal["full", "signatures", "locations"],
    Field(
        description="full (default): with code; signatures: each hit's header and "
        "first line; locations: one `path:line symbol` line per hit, the cheapest "
        "way to survey."
    ),
]
MaxTokensArg = Annotated[
    int | None,
    Field(
        ge=50,
        description="Cap the answer's size in tokens (about 4 characters each); "
        "the list is cut to fit and says so.",
    ),
]


def _resource_call(function):
    """As _tool_call, for resources: a domain error keeps its message for the client."""
    guarded = _tool_call(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return guarded(*args, **kwargs)
        except ToolError as exc:
            raise ResourceError(str(exc)) from exc

    return wrapper


class _Access:
    """Whether calls must carry a token: only over HTTP (runmcp sets `http`).

    stdio serves the user who started the process, with the user's rights:
    no token. Over HTTP every call's grant comes from its own request's
    `Authorization` header (config.auth); before any token is configured
    the server is open, which runmcp allows on a loopback address only.
    """

    def __init__(self) -> None:
        self.http = False

    def grant(self, ctx: Context | None) -> Grant:
        if not self.http:
            return LOCAL
        try:
            headers = (ctx.headers if ctx is not None else None) or {}
        except (AttributeError, ValueError, LookupError):
            headers = {}
        try:
            return grant_for_bearer(headers.get("authorization"), open_grant=OPEN)
        except ApiTokenError as exc:
            raise ToolError(getattr(exc, "message", str(exc))) from exc


access = _Access()


def _bearer_refusal(header: str | None) -> str | None:
    """Return why an HTTP request's bearer is refused, or None when it may pass."""
    try:
        grant_for_bearer(header, open_grant=OPEN)
    except ApiTokenError as exc:
        return getattr(exc, "message", str(exc))
    finally:
        # Called on an anyio worker thread: hand its registry connection back.
        connections.close_all()
    return None


def http_app(*, host: str):
    """Return the Streamable HTTP app, behind a gate that checks each request's token.

    The gate answers 401 before the MCP layer sees a request without a live
    token (once tokens are configured); each tool then checks the token's
    scope against the project it touches (`_resolve`).
    """
    import anyio.to_thread
    from starlette.responses import JSONResponse

    inner = server.streamable_http_app(host=host)
    access.http = True

    async def gate(scope, receive, send):
        if scope["type"] == "http":
            header = None
            for key, value in scope.get("headers") or []:
                if key.lower() == b"authorization":
                    header = value.decode("latin-1")
                    break
            refusal = await anyio.to_thread.run_sync(_bearer_refusal, header)
            if refusal is not None:
                response = JSONResponse(
                    {"detail": refusal, "code": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="codebase-mcp"'},
                )
                await response(scope, receive, send)
                return
        await inner(scope, receive, send)

    return gate


# What any caller may do over loopback HTTP before a token exists (as today).
OPEN = Grant(holder="open loopback server (no token configured)", permission=ADMIN)


def _resolve(
    project_id: str | None, ctx: Context | None, permission: str
) -> ResolvedProject:
    """Resolve the project of a call and check the caller's token covers it."""
    grant = access.grant(ctx)
    resolved = None
    if permission_includes(grant, permission=permission):
        try:
            resolved = project_resolve(
                project_id=project_id, working_directory=sessions.get(ctx)
            )
        except ProjectNotFound:
            if grant.all_projects:
                raise
            # A token over some projects learns nothing about the others.
            resolved = None
    if resolved is None or not token_allows(
        grant, project=resolved.project, permission=permission
    ):
        if project_id is not None:
            target = f"project {str(project_id)[:80]!r}"
        elif resolved is not None:
            target = f"project {resolved.project.name!r}"
        else:
            target = "this session's project"
        raise AccessDenied(permission=permission, target=target, holder=grant.holder)
    return resolved


def _projects_of(
    project_id: str | None, projects: list[str] | None, ctx: Context | None
) -> list[Project] | None:
    """Return the projects of a call over several, or None for a one-project call."""
    if projects is None:
        return None
    if project_id is not None and str(project_id).strip():
        raise ToolError(
            "Pass project_id (one project) or projects (several), not both: "
            "put every project to ask in projects."
        )
    return projects_resolve(references=projects, grant=access.grant(ctx))


def _ref(resolved: ResolvedProject) -> ProjectRef:
    return ProjectRef(**resolved.as_dict())


@server.tool()
@_tool_call
def set_working_directory(
    directory: Annotated[
        str, Field(description="Absolute path of the folder the user works in.")
    ],
    ctx: Context,
) -> Annotated[CallToolResult, WorkingDirectoryResult]:
    """Set this session's working directory and return the project it resolves to.

    The project comes from the nearest .codebase-mcp/config.json at or above the
    directory (a project named there is created if missing); later calls without
    project_id use it. Call this first in a new session.
    """
    path = os.path.realpath(os.path.expanduser(directory.strip())) if directory else ""
    if not path or not os.path.isdir(path):
        raise ToolError(
            f"{directory!r} is not an existing directory; pass an absolute path."
        )
    sessions.set(ctx, path)
    resolved = _resolve(None, ctx, READ)
    config = session_config_find(directory=path)
    result = WorkingDirectoryResult(
        directory=path,
        project=_ref(resolved),
        config_path=str(config) if config else None,
    )
    return _answer(result, renderings.working_directory_render(result))


def _progress_sender(ctx: Context | None):
    """Return a callback that sends MCP progress notifications from a worker thread."""
    if ctx is None:
        return None
    last = [0.0]

    def send(progress: IndexProgress) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and progress.phase != "completed":
            return
        last[0] = now
        if progress.phase == "embedding":
            done, total = progress.chunks_embedded, progress.chunks_to_embed
            message = embedding_progress_text(
                phase=progress.phase,
                chunks_embedded=done,
                chunks_to_embed=total,
                embed_rate=progress.embed_rate,
                eta_seconds=progress.eta_seconds,
            )
        else:
            done, total = progress.files_done, progress.files_total
            message = f"{progress.phase}: {done}/{total} files"
        try:
            anyio.from_thread.run(
                ctx.report_progress, float(done), float(total or 1), message
            )
        except Exception:  # a client that went away must not fail the index
            logger.debug("progress notification failed", exc_info=True)

    return send


@server.tool()
@_tool_call
def index_repository(
    repo_path: Annotated[
        str, Field(description="Absolute path of the repository root.")
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    force_reindex: Annotated[
        bool, Field(description="Re-chunk every file even if unchanged.")
    ] = False,
) -> Annotated[CallToolResult, IndexResult]:
    """Index a repository and return when it is fully searchable (embeddings included).

    Incremental: unchanged files are skipped, deleted files removed. Sends progress
    notifications. On a large repository prefer start_indexing_background.
    """
    resolved = _resolve(project_id, ctx, WRITE)
    summary = repository_index(
        project=resolved.project,
        repo_path=repo_path,
        force_reindex=force_reindex,
        progress=_progress_sender(ctx),
    )
    result = IndexResult(
        repository_id=summary.repository_id,
        repository_path=summary.repository_path,
        files_indexed=summary.files_indexed,
        files_unchanged=summary.files_unchanged,
        files_deleted=summary.files_deleted,
        files_skipped=summary.files_skipped,
        skipped_by_reason=summary.skipped_by_reason,
        chunks_total=summary.chunks_total,
        chunks_written=summary.chunks_written,
        chunks_embedded=summary.chunks_embedded,
        embedding_model=summary.embedding_model,
        duration_seconds=round(summary.seconds, 3),
        project=_ref(resolved),
    )
    return _answer(result, renderings.index_render(result))


@server.tool()
@_tool_call
def refresh_index(
    ctx: Context,
    project_id: ProjectIdArg = None,
    repository_id: Annotated[
        str | None,
        Field(
            description="Only this indexed repository (id, path or name); default: "
            "every repository of the project."
        ),
    ] = None,
    paths: Annotated[
        list[str] | None,
        Field(
            description="Only these files (absolute, or relative to the "
            "repository): the fastest update after editing them. Deleted files "
            "are removed; ignored ones are refused with the reason."
        ),
    ] = None,
) -> Annotated[CallToolResult, RefreshResult]:
    """Update the index with what changed on disk since it was last indexed, and return what changed.

    Call it right after editing files, so that search_code, find_symbol,
    find_references and grep_code see the new code. Without paths it checks
    every file by size and time (unchanged files are not read); with paths
    only those files. Embeds the new chunks before returning.
    """
    resolved = _resolve(project_id, ctx, WRITE)
    started = time.monotonic()
    summaries = repositories_refresh(
        project=resolved.project,
        repository=repository_id,
        paths=paths,
        progress=_progress_sender(ctx),
    )
    result = RefreshResult(
        repositories=[
            RefreshedOut.model_validate(summary, from_attributes=True)
            for summary in summaries
        ],
        duration_seconds=round(time.monotonic() - started, 3),
        project=_ref(resolved),
    )
    return _answer(result, renderings.refresh_render(result))


@server.tool()
@_tool_call
def start_indexing_background(
    repo_path: Annotated[
        str, Field(description="Absolute path of the repository root.")
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    force_reindex: Annotated[
        bool, Field(description="Re-chunk every file even if unchanged.")
    ] = False,
) -> Annotated[CallToolResult, JobStarted]:
    """Start indexing in the background and return a job_id at once.

    Poll get_indexing_status(job_id). search_code works meanwhile on what is
    already stored (keyword first, vectors as they are computed).
    """
    resolved = _resolve(project_id, ctx, WRITE)
    job = index_job_start(
        project=resolved.project, repo_path=repo_path, force_reindex=force_reindex
    )
    result = JobStarted(
        job_id=str(job.id),
        status=job.status,
        repo_path=job.repo_path,
        project=_ref(resolved),
    )
    return _answer(result, renderings.job_started_render(result))


@server.tool()
@_tool_call
def get_indexing_status(
    job_id: Annotated[
        str, Field(description="The job_id from start_indexing_background.")
    ],
    ctx: Context,
) -> Annotated[CallToolResult, JobStatus]:
    """Return a background indexing job's status, progress counts and error, if any."""
    job = job_for(access.grant(ctx), job_id=job_id)
    result = JobStatus(**index_job_as_dict(job=job))
    return _answer(result, renderings.job_render(result))


@server.tool()
@_tool_call
def search_code(
    query: Annotated[
        str,
        Field(
            description=(
                "What to find: a plain-English description ('where are passwords "
                "hashed') or identifiers ('parseHeader'). A \"quoted phrase\" must "
                "appear in every result and -word must not; other words only rank."
            )
        ),
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    projects: ProjectsArg = None,
    repository_id: Annotated[
        str | None, Field(description="Only this repository (id or absolute path).")
    ] = None,
    language: Annotated[
        str | None,
        Field(description="Only this language, e.g. 'python', 'typescript'."),
    ] = None,
    file_type: Annotated[
        str | None, Field(description="Only files with this extension, e.g. 'py'.")
    ] = None,
    directory: Annotated[
        str | None,
        Field(description="Only under this directory, relative to the repo root."),
    ] = None,
    limit: Annotated[
        int, Field(ge=1, le=MAX_LIMIT, description="Number of results.")
    ] = 10,
    mode: Annotated[
        Literal["hybrid", "semantic", "keyword"],
        Field(description="hybrid (default) fuses meaning and keywords."),
    ] = "hybrid",
    max_tokens: MaxTokensArg = None,
    snippet_lines: Annotated[
        int | None,
        Field(
            ge=1,
            le=400,
            description="Show at most this many lines of each result's code; the "
            "answer says how many were cut.",
        ),
    ] = None,
    context_lines: Annotated[
        int,
        Field(
            ge=0,
            le=10,
            description="Lines shown around each result (a result is already a "
            "whole function, class or window).",
        ),
    ] = 0,
    output: OutputArg = "full",
) -> Annotated[CallToolResult, SearchCodeResult]:
    """Search the project's indexed code by meaning and keywords.

    Returns ranked results with file path (relative to the repository), line range,
    symbol, code, surrounding lines, and stale=true when the file changed since it
    was indexed. With projects=[...] it searches several projects at once (e.g. a
    service and its client libraries) and labels each hit with its project.
    """
    arguments = {
        "query": query,
        "mode": mode,
        "limit": limit,
        "repository": repository_id,
        "language": language,
        "file_type": file_type,
        "directory": directory,
        "max_tokens": max_tokens,
        "context_lines": 0 if output != "full" else context_lines,
    }
    many = _projects_of(project_id, projects, ctx)
    if many is not None:
        payload = chunk_search_federated(projects=many, **arguments).as_dict()
    else:
        resolved = _resolve(project_id, ctx, READ)
        payload = chunk_search(project=resolved.project, **arguments).as_dict()
        payload["project"] = _ref(resolved)
    payload["results"] = [
        _hit_shape(SearchHit(**hit), output=output, snippet_lines=snippet_lines)
        for hit in payload["results"]
    ]
    result = SearchCodeResult(**payload)
    return _answer(
        result,
        renderings.answer_fit(
            result=result,
            render=lambda r: renderings.search_render(r, output=output),
            items=lambda r: r.results,
            max_tokens=max_tokens,
            mark=_cut("results"),
        ),
    )


def _hit_shape(hit: SearchHit, *, output: str, snippet_lines: int | None) -> SearchHit:
    """Cut a hit's code to what the caller asked to see."""
    lines = hit.content.splitlines()
    keep = {"full": snippet_lines, "signatures": 1, "locations": 0}[output]
    if keep is not None and len(lines) > keep:
        hit.content = "\n".join(lines[:keep])
        hit.lines_cut = len(lines) - keep
        hit.context_after = ""
    return hit


RepositoryArg = Annotated[
    str | None, Field(description="Only this repository (id, absolute path or name).")
]
LanguageArg = Annotated[
    str | None, Field(description="Only this language, e.g. 'python', 'go'.")
]
PathGlobArg = Annotated[
    str | None, Field(description="Only paths matching this glob, e.g. 'src/**/*.py'.")
]


@server.tool()
@_tool_call
def find_symbol(
    name: Annotated[
        str,
        Field(
            description=(
                "Identifier or qualified name: 'parse_header', 'Parser.parse_header', "
                "'Store.Get'. Matched literally (no regex)."
            )
        ),
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    projects: ProjectsArg = None,
    kind: Annotated[
        str | None,
        Field(
            description="Only this kind: function, method, class, interface, "
            "struct, enum, trait, constant, variable, type, module..."
        ),
    ] = None,
    language: LanguageArg = None,
    repository_id: RepositoryArg = None,
    path_glob: PathGlobArg = None,
    match: Annotated[
        Literal["exact", "prefix", "fuzzy"],
        Field(
            description="exact (default), prefix (names starting with it), "
            "fuzzy (similar names too)."
        ),
    ] = "exact",
    limit: Annotated[
        int, Field(ge=1, le=200, description="Definitions to return.")
    ] = 10,
    body_lines: Annotated[
        int, Field(ge=0, le=400, description="Lines of each body to include (0: none).")
    ] = 40,
    output: OutputArg = "full",
    max_tokens: MaxTokensArg = None,
) -> Annotated[CallToolResult, FindSymbolResult]:
    """Find where a name is defined: file, lines, signature, docstring and body.

    Ranked exact name, then qualified name, then prefix, then fuzzy. When
    nothing matches, suggests the closest defined names. Use this instead of
    grepping for a definition. projects=[...] looks in several projects at once.
    """
    arguments = {
        "name": name,
        "kind": kind,
        "language": language,
        "repository": repository_id,
        "path_glob": path_glob,
        "match": match,
        "limit": limit,
        "body_lines": body_lines if output == "full" else 0,
    }
    many = _projects_of(project_id, projects, ctx)
    if many is not None:
        result = FindSymbolResult(
            **symbol_find_federated(projects=many, **arguments).as_dict()
        )
    else:
        resolved = _resolve(project_id, ctx, READ)
        found = symbol_find(project=resolved.project, **arguments)
        result = FindSymbolResult(**found.as_dict(), project=_ref(resolved))
    return _answer(
        result,
        renderings.answer_fit(
            result=result,
            render=lambda r: renderings.symbols_render(r, output=output),
            items=lambda r: r.symbols,
            max_tokens=max_tokens,
            mark=_cut("definitions"),
        ),
    )


@server.tool()
@_tool_call
def find_references(
    name: Annotated[
        str,
        Field(description="Identifier or qualified name whose uses to find."),
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    kind: Annotated[
        Literal["call", "attribute", "type", "import", "name"] | None,
        Field(description="Only this kind of use."),
    ] = None,
    language: LanguageArg = None,
    repository_id: RepositoryArg = None,
    path_glob: PathGlobArg = None,
    directory: Annotated[
        str | None, Field(description="Only under this directory of the repository.")
    ] = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="Uses to return.")] = 50,
    per_file: Annotated[
        int, Field(ge=1, le=200, description="Uses to return per file at most.")
    ] = 20,
    output: Annotated[
        Literal["full", "locations"],
        Field(
            description="full (default): each use with its line; locations: "
            "`path:line container` only."
        ),
    ] = "full",
    max_tokens: MaxTokensArg = None,
) -> Annotated[CallToolResult, FindReferencesResult]:
    """Find who uses a name: uses grouped by file with line text and enclosing function.

    Matching is by name (not by type): when several definitions share the
    name, the answer lists them and says so; narrow with a qualified name,
    path_glob or repository_id. Totals per file tell how many uses were not shown.
    """
    resolved = _resolve(project_id, ctx, READ)
    found = reference_find(
        project=resolved.project,
        name=name,
        kind=kind,
        language=language,
        repository=repository_id,
        path_glob=path_glob,
        directory=directory,
        limit=limit,
        per_file=per_file,
    )
    result = FindReferencesResult(**found.as_dict(), project=_ref(resolved))
    if output == "locations":
        for group in result.files:
            for use in group.references:
                use.text = ""
    return _answer(
        result,
        renderings.answer_fit(
            result=result,
            render=lambda r: renderings.references_render(r, output=output),
            items=lambda r: r.files,
            max_tokens=max_tokens,
            mark=_cut("files of uses"),
        ),
    )


@server.tool()
@_tool_call
def file_outline(
    path: Annotated[
        str,
        Field(
            description="File path relative to its repository (as results show "
            "it), or absolute."
        ),
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    repository_id: RepositoryArg = None,
    max_tokens: MaxTokensArg = None,
) -> Annotated[CallToolResult, FileOutlineResult]:
    """List a file's definitions as a tree (class -> methods) with signatures and
    line ranges, without bodies: the cheap way to see a file before reading it."""
    resolved = _resolve(project_id, ctx, READ)
    found = outline_file(project=resolved.project, path=path, repository=repository_id)
    result = FileOutlineResult(**found.as_dict(), project=_ref(resolved))
    return _answer(
        result,
        renderings.answer_fit(
            result=result,
            render=renderings.outline_render,
            items=lambda r: r.symbols,
            max_tokens=max_tokens,
            mark=_cut("top-level definitions"),
        ),
    )


@server.tool()
@_tool_call
def grep_code(
    pattern: Annotated[
        str,
        Field(
            description="Text to find (literal by default), or a regex with "
            "regex=true. One line; matched within a line, as ripgrep does."
        ),
    ],
    ctx: Context,
    project_id: ProjectIdArg = None,
    projects: ProjectsArg = None,
    regex: Annotated[
        bool,
        Field(
            description="Treat pattern as an RE2 regex (ripgrep's syntax; no "
            "look-around or back-references; \\w \\d \\b are ASCII)."
        ),
    ] = False,
    case_sensitive: Annotated[
        bool, Field(description="false: match any case (like rg -i).")
    ] = True,
    whole_word: Annotated[
        bool, Field(description="Match whole words only (like rg -w).")
    ] = False,
    repository_id: RepositoryArg = None,
    language: LanguageArg = None,
    file_type: Annotated[
        str | None, Field(description="Only files with this extension, e.g. 'py'.")
    ] = None,
    directory: Annotated[
        str | None, Field(description="Only under this directory of the repository.")
    ] = None,
    path_glob: PathGlobArg = None,
    context_lines: Annotated[
        int,
        Field(ge=0, le=MAX_CONTEXT_LINES, description="Lines shown around a match."),
    ] = 0,
    max_matches: Annotated[
        int, Field(ge=1, le=MAX_MATCHES, description="Matching lines to return.")
    ] = DEFAULT_MAX_MATCHES,
    max_per_file: Annotated[
        int,
        Field(ge=1, le=MAX_PER_FILE, description="Matching lines per file at most."),
    ] = DEFAULT_MAX_PER_FILE,
    output: Annotated[
        Literal["full", "locations"],
        Field(
            description="full (default): each line with its text; locations: "
            "`path:line symbol` only."
        ),
    ] = "full",
    max_tokens: MaxTokensArg = None,
) -> Annotated[CallToolResult, GrepCodeResult]:
    """Find every line of the indexed files matching a text or regex, grouped by file.

    Each match has its line number, column, the line, optional context and the
    definition it sits in; totals say how many lines and files matched. Use it
    instead of running grep: it reads the index, not the disk. For code by
    meaning use search_code; for a definition, find_symbol. projects=[...] greps
    several projects at once.
    """
    arguments = {
        "pattern": pattern,
        "regex": regex,
        "case_sensitive": case_sensitive,
        "whole_word": whole_word,
        "repository": repository_id,
        "language": language,
        "file_type": file_type,
        "directory": directory,
        "path_glob": path_glob,
        "context_lines": context_lines,
        "max_matches": max_matches,
        "max_per_file": max_per_file,
    }
    many = _projects_of(project_id, projects, ctx)
    if many is not None:
        result = GrepCodeResult(
            **code_grep_federated(projects=many, **arguments).as_dict()
        )
    else:
        resolved = _resolve(project_id, ctx, READ)
        found = code_grep(project=resolved.project, **arguments)
        result = GrepCodeResult(**found.as_dict(), project=_ref(resolved))
    if output == "locations":
        for group in result.files:
            for match in group.matches:
                match.text, match.context_before, match.context_after = "", [], []
    return _answer(
        result,
        renderings.answer_fit(
            result=result,
            render=lambda r: renderings.grep_render(r, output=output),
            items=lambda r: r.files,
            max_tokens=max_tokens,
            mark=_cut("files of matches"),
        ),
    )


@server.tool()
@_tool_call
def list_projects(ctx: Context) -> Annotated[CallToolResult, ProjectList]:
    """List every project you may read, with its id, name and database."""
    result = ProjectList(
        projects=[
            ProjectInfo(
                id=str(p.id),
                name=p.name,
                description=p.description,
                database_name=p.database_name,
                created_at=p.created_at.isoformat(),
            )
            for p in projects_readable(access.grant(ctx), projects=project_list())
        ]
    )
    return _answer(result, renderings.projects_render(result))


@server.tool()
@_tool_call
def create_project(
    name: Annotated[str, Field(description="Project name (up to 255 characters).")],
    ctx: Context,
    description: Annotated[
        str | None, Field(description="Optional description.")
    ] = None,
) -> Annotated[CallToolResult, ProjectInfo]:
    """Create a project with its own database; index into it with project_id=name."""
    access_require(access.grant(ctx), permission=WRITE, target="every project")
    project = project_create(name=name, description=description or "")
    result = ProjectInfo(
        id=str(project.id),
        name=project.name,
        description=project.description,
        database_name=project.database_name,
        created_at=project.created_at.isoformat(),
    )
    return _answer(result, renderings.project_render(result))


@server.tool()
@_tool_call
def get_project_status(
    ctx: Context, project_id: ProjectIdArg = None
) -> Annotated[CallToolResult, ProjectStatusResult]:
    """Return a project's repositories, file and chunk counts, embedding model, last
    indexing time and running jobs."""
    resolved = _resolve(project_id, ctx, READ)
    result = _status_result(resolved, project_status(project=resolved.project))
    return _answer(result, renderings.status_render(result))


def _status_result(resolved: ResolvedProject, status) -> ProjectStatusResult:
    return ProjectStatusResult(
        project=_ref(resolved),
        repositories=[RepositoryOut(**vars(r)) for r in status.repositories],
        files=status.files,
        chunks=status.chunks,
        embedded_chunks=status.embedded_chunks,
        embedded_fraction=status.embedded_fraction,
        embedding_model=status.embedding_model,
        last_indexed_at=status.last_indexed_at,
        size_bytes=status.size_bytes,
        running_jobs=[JobStatus(**job) for job in status.running_jobs],
        symbols=status.symbols,
        references=status.references,
    )


@server.resource(
    "codebase://{project}/{repository}/{+path}{?lines}",
    name="indexed_file",
    description="An indexed file as it was indexed: codebase://PROJECT/REPOSITORY/"
    "PATH (REPOSITORY: its name, id or path), ?lines=START-END for a range.",
)
@_resource_call
def indexed_file(
    project: str, repository: str, path: str, ctx: Context, lines: str = ""
) -> str:
    """Read lines of an indexed file through the server (what search hits point at)."""
    start, end = _line_range(lines)
    found = file_text_read(
        project=_resolve(project, ctx, READ).project,
        path=path,
        repository=repository,
        start_line=start,
        end_line=end,
    )
    stale = (
        "  [STALE: changed on disk since indexing; this is the indexed text]"
        if found.stale
        else ""
    )
    return (
        f"{found.file_path}:{found.start_line}-{found.end_line} of {found.lines} "
        f"lines in {found.repository}{stale}\n"
        + renderings.fence(found.language, found.text)
    )


def _line_range(lines: str) -> tuple[int, int | None]:
    if not lines:
        return 1, None
    first, _, last = lines.partition("-")
    try:
        return int(first), int(last) if last else int(first)
    except ValueError:
        raise ResourceError(
            f"lines={lines!r} is not a line range; use e.g. lines=10-40 or lines=12."
        ) from None


@server.resource(
    "codebase://{project}/status",
    name="project_status",
    description="A project's repositories, counts, embedding coverage and jobs.",
)
@_resource_call
def project_status_resource(project: str, ctx: Context) -> str:
    """Read a project's status as text."""
    resolved = _resolve(project, ctx, READ)
    status = project_status(project=resolved.project)
    return renderings.status_render(_status_result(resolved, status))


def _arguments_refuse_unknown(tool) -> None:
    """Make a tool refuse arguments it does not take, naming the ones it does.

    The SDK's argument models ignore unknown keys, so a misspelt filter
    (`langauge=`) would be dropped and the answer would silently ignore it.
    """
    base = tool.fn_metadata.arg_model
    known = sorted(field.alias or name for name, field in base.model_fields.items())

    def refuse(cls, data):
        if not isinstance(data, dict):
            return data
        unknown = sorted(set(data) - set(known))
        if unknown:
            named = []
            for name in unknown:
                close = difflib.get_close_matches(name, known, n=1)
                named.append(
                    f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
                )
            raise ValueError(
                f"{tool.name} does not take {', '.join(named)}; {tool.name} takes: "
                f"{', '.join(known) or 'no arguments'}."
            )
        return data

    strict = type(
        base.__name__,
        (base,),
        {
            "__module__": base.__module__,
            "model_config": ConfigDict(**base.model_config, extra="forbid"),
            "_refuse_unknown": model_validator(mode="before")(classmethod(refuse)),
        },
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)


# MCPServer has no public hook for a tool's argument model; its tool manager
# holds the registered tools.
for _tool in server._tool_manager.list_tools():
    _arguments_refuse_unknown(_tool)
