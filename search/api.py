"""REST endpoint of search: find a project's code by meaning and keywords."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from registry.schemas import Text, error_responses
from registry.selectors import project_get
from search.schemas import SearchOut, SearchQueryIn
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
    project = project_get(reference=id_or_name)
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
