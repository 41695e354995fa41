"""REST endpoints of search: code by meaning and keywords, and by name."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from config.access import READ, project_for, projects_named
from registry.models import Project
from registry.schemas import Text, error_responses
from search.federation import (
    chunk_search_federated,
    code_grep_federated,
    symbol_find_federated,
)
from search.grep import code_grep
from search.navigation import file_outline, reference_find, symbol_find
from search.schemas import (
    FederatedGrepOut,
    FederatedSearchOut,
    FederatedSymbolOut,
    FileOutlineResponse,
    GrepQueryIn,
    GrepSearchResponse,
    ProjectsQueryIn,
    ReferenceQueryIn,
    ReferenceSearchResponse,
    SearchOut,
    SearchQueryIn,
    SymbolQueryIn,
    SymbolSearchResponse,
)
from search.selectors import chunk_search

router = Router(tags=["search"])


@router.get(
    "/projects/{id_or_name}/search",
    response={200: SearchOut, **error_responses(400, 404, 409)},
)
def search(
    request: HttpRequest, id_or_name: Text, params: Query[SearchQueryIn]
) -> dict:
    """Search a project's indexed code; return ranked chunks with their context."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    response = chunk_search(
        project=project,
        query=params.q,
        mode=params.mode,
        limit=params.limit,
        repository=params.repository,
        language=params.language,
        file_type=params.file_type,
        directory=params.directory,
        path_glob=params.path_glob,
        context_lines=params.context_lines,
        max_tokens=params.max_tokens,
    )
    return {**response.as_dict(), "project": project}


@router.get(
    "/projects/{id_or_name}/symbols",
    response={200: SymbolSearchResponse, **error_responses(400, 404)},
)
def symbols(
    request: HttpRequest, id_or_name: Text, params: Query[SymbolQueryIn]
) -> dict:
    """Find the definitions of a name: exact, qualified, prefix or fuzzy."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    found = symbol_find(project=project, **params.dict())
    return {**found.as_dict(), "project": project}


@router.get(
    "/projects/{id_or_name}/references",
    response={200: ReferenceSearchResponse, **error_responses(400, 404)},
)
def references(
    request: HttpRequest, id_or_name: Text, params: Query[ReferenceQueryIn]
) -> dict:
    """Find where a name is used, grouped by file, and which definitions carry it."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    found = reference_find(project=project, **params.dict())
    return {**found.as_dict(), "project": project}


@router.get(
    "/projects/{id_or_name}/files/{path:path}/outline",
    response={200: FileOutlineResponse, **error_responses(400, 404)},
)
def outline(
    request: HttpRequest,
    id_or_name: Text,
    path: str,
    repository: Text | None = None,
) -> dict:
    """Outline one indexed file: its definitions as a tree, without bodies."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    found = file_outline(project=project, path=path, repository=repository)
    return {**found.as_dict(), "project": project}


@router.get(
    "/projects/{id_or_name}/grep",
    response={200: GrepSearchResponse, **error_responses(400, 404)},
)
def grep(request: HttpRequest, id_or_name: Text, params: Query[GrepQueryIn]) -> dict:
    """Find every indexed line matching a literal or an RE2 regex, grouped by file."""
    project = project_for(request.auth, reference=id_or_name, permission=READ)
    found = code_grep(project=project, **params.dict())
    return {**found.as_dict(), "project": project}


# --- calls over several projects ------------------------------------------------


def _projects_readable(request: HttpRequest, names: ProjectsQueryIn) -> list[Project]:
    """Turn the `projects` of a request into the registry rows its token may read.

    Every endpoint over several projects passes its names through here and
    nowhere else. A token over some projects gets the same 403 for a name it
    does not list and for one that does not exist.
    """
    references = [part.strip() for entry in names.projects for part in entry.split(",")]
    return projects_named(request.auth, references=references, permission=READ)


@router.get(
    "/search",
    response={200: FederatedSearchOut, **error_responses(400, 404)},
)
def search_projects(
    request: HttpRequest,
    names: Query[ProjectsQueryIn],
    params: Query[SearchQueryIn],
) -> dict:
    """Search several projects at once; return hits merged by rank, each labelled."""
    found = chunk_search_federated(
        projects=_projects_readable(request, names),
        query=params.q,
        mode=params.mode,
        limit=params.limit,
        repository=params.repository,
        language=params.language,
        file_type=params.file_type,
        directory=params.directory,
        path_glob=params.path_glob,
        context_lines=params.context_lines,
        max_tokens=params.max_tokens,
    )
    return found.as_dict()


@router.get(
    "/symbols",
    response={200: FederatedSymbolOut, **error_responses(400, 404)},
)
def symbols_projects(
    request: HttpRequest,
    names: Query[ProjectsQueryIn],
    params: Query[SymbolQueryIn],
) -> dict:
    """Find the definitions of a name in several projects, each labelled."""
    found = symbol_find_federated(
        projects=_projects_readable(request, names), **params.dict()
    )
    return found.as_dict()


@router.get(
    "/grep",
    response={200: FederatedGrepOut, **error_responses(400, 404)},
)
def grep_projects(
    request: HttpRequest,
    names: Query[ProjectsQueryIn],
    params: Query[GrepQueryIn],
) -> dict:
    """Find every indexed line matching a pattern in several projects, by file."""
    found = code_grep_federated(
        projects=_projects_readable(request, names), **params.dict()
    )
    return found.as_dict()
