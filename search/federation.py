"""Search several projects in one call: each on its own connection, merged by rank.

The projects arrive resolved (registry.selectors.projects_get: deduplicated,
at most MAX_PROJECTS, each one the caller may read); nothing here looks a
project up by name, so only the named projects' databases are opened. Each
project ranks as a single-project call does (chunk_search_ranked), on its
own alias (its own pool, possibly its own server), in a thread of its own
(the process keeps these threads between calls; each hands its connection
back to the pool once its project has answered), within
FEDERATED_PROJECT_TIMEOUT_SECONDS. Context lines are read once the
merged hits are known, for those only. A project that fails or misses the
deadline becomes a note and an outcome with its status; the others answer.
Only when no project answers and the cause is the caller's input (the same
bad argument for every project) does the call fail, with that error.

How lists of different databases are merged:
- search: by reciprocal rank fusion (results_merge_ranked) over each
  project's ranked lists (its fused score is their weighted reciprocal
  ranks, never BM25 or a distance) and one global semantic list: every hit
  ordered by the cosine distance of its vector to the query's, measured
  alike in every database (one model, one query vector; a project still on
  other shipped weights measures with a query vector of those). Raw scores that
  depend on a database's statistics (BM25) are never compared. Without the
  global list, every project's first hit ties with the others' and the
  projects interleave: on bench/quality.py --federated (five projects) that
  kept 0.41-0.43 of one project's docstring MRR@10; with it, semantic keeps
  1.00, hybrid 0.94, keyword 0.79 (whose ranks stay per project).
- find_symbol: by the kind of match (name, qualified, case, prefix, fuzzy),
  then by the rank within the project, then by project order.
- grep_code: files by project order, then as each project lists them
  (repository, path); the match budget is spent in that order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Generic, TypeVar

from django.conf import settings

from indexing.embedders import Embedder, embedder_for_space, embedder_get
from indexing.exceptions import IndexingError, UnknownRepository
from indexing.models import EmbeddingSpace
from registry.databases import project_connection, thread_connections_release
from registry.exceptions import RegistryError
from registry.models import Project
from registry.selectors import MAX_PROJECTS
from registry.services import project_alias
from search.exceptions import (
    InvalidSearchQuery,
    SearchError,
    UnknownFile,
    UnknownLanguage,
)
from search.grep import GrepFile, GrepSearch, code_grep
from search.navigation import (
    MATCH_ORDER,
    SUGGESTIONS,
    NameCount,
    SymbolHit,
    SymbolSearch,
    symbol_find,
)
from search.results import SearchResult, results_add_context, results_fit_budget
from search.selectors import (
    RankedSearch,
    chunk_search_ranked,
    project_vector_state,
    search_arguments_clean,
)
from search.statistics import search_stat_record

logger = logging.getLogger("codebase_mcp.search")

T = TypeVar("T")

# Errors that say the caller's input is wrong, whichever project reads it.
_INPUT_ERRORS = (InvalidSearchQuery, UnknownLanguage, UnknownRepository, UnknownFile)
# Errors whose message is written for the user and may be shown as is.
_DOMAIN_ERRORS = (RegistryError, IndexingError, SearchError)


def federation_timeout() -> float:
    """Return the seconds each project of a federated call has to answer."""
    return float(getattr(settings, "FEDERATED_PROJECT_TIMEOUT_SECONDS", 10.0))


@dataclass
class ProjectOutcome:
    """How one project of a federated call answered."""

    name: str
    id: str
    status: str  # "ok" | "failed" | "timed_out"
    hits: int
    latency_ms: float
    note: str | None = None


@dataclass
class _Answer(Generic[T]):
    project: Project
    value: T | None
    outcome: ProjectOutcome
    error: BaseException | None = None


def _project_call(call: Callable[[Project], T], project: Project) -> tuple:
    started = time.perf_counter()
    try:
        return call(project), None, time.perf_counter() - started
    except Exception as exc:  # reported as this project's outcome, not raised
        return None, exc, time.perf_counter() - started
    finally:
        # The thread belongs to this call: its connections go back to the
        # projects' pools now, not when the thread is collected.
        thread_connections_release()


def _error_note(project: Project, exc: BaseException) -> str:
    if isinstance(exc, _DOMAIN_ERRORS):
        return f"project {project.name!r} failed: {exc}"
    # A driver's message may carry server addresses or paths: log it, say less.
    logger.warning("federated call: project %s failed", project.name, exc_info=exc)
    return (
        f"project {project.name!r} failed ({type(exc).__name__}); its database "
        "could not answer. The other projects' results are shown."
    )


# Threads kept for every federated call of the process: starting ten threads
# per call cost more than a tiny project's search. Enough for two calls of
# MAX_PROJECTS at once; a third waits its turn (within its deadline).
_THREADS = 2 * MAX_PROJECTS
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=_THREADS, thread_name_prefix="federation"
            )
        return _pool


def projects_run(
    *,
    projects: Sequence[Project],
    call: Callable[[Project], T],
    count: Callable[[T], int],
    timeout: float | None = None,
) -> list[_Answer[T]]:
    """Run `call` for every project in parallel threads; return each one's answer.

    Every project gets `timeout` seconds (FEDERATED_PROJECT_TIMEOUT_SECONDS by
    default), counted from the start of the call: projects run at once, so
    the call takes about as long as its slowest project or the timeout. The
    threads are the process's, kept between calls. A project past the
    deadline is left to finish in its thread (its statement has its own
    timeout) and reported as timed out; one not yet started is not started.
    """
    timeout = federation_timeout() if timeout is None else timeout
    executor = _executor()
    futures = [executor.submit(_project_call, call, project) for project in projects]
    wait(futures, timeout=timeout)
    for future in futures:
        future.cancel()  # one still queued behind other calls' work: not started
    answers: list[_Answer[T]] = []
    for project, future in zip(projects, futures, strict=True):
        if not future.done():
            note = (
                f"project {project.name!r} did not answer within {timeout:g} s; the "
                "other projects' results are shown. Ask it alone to wait longer."
            )
            outcome = ProjectOutcome(
                project.name, str(project.id), "timed_out", 0, timeout * 1000, note
            )
            answers.append(_Answer(project, None, outcome))
            continue
        value, error, seconds = future.result()
        milliseconds = round(seconds * 1000, 2)
        if error is not None:
            outcome = ProjectOutcome(
                project.name,
                str(project.id),
                "failed",
                0,
                milliseconds,
                _error_note(project, error),
            )
            answers.append(_Answer(project, None, outcome, error))
            continue
        outcome = ProjectOutcome(
            project.name, str(project.id), "ok", count(value), milliseconds
        )
        answers.append(_Answer(project, value, outcome))
    if not any(answer.value is not None for answer in answers):
        for answer in answers:
            if isinstance(answer.error, _INPUT_ERRORS):
                raise answer.error
    return answers


def _failure_notes(answers: Sequence[_Answer]) -> list[str]:
    return [a.outcome.note for a in answers if a.outcome.note]


def _project_notes(answers: Sequence[_Answer], notes_of) -> list[str]:
    return [
        f"[{answer.project.name}] {note}"
        for answer in answers
        if answer.value is not None
        for note in notes_of(answer.value)
    ]


# --- search_code ---------------------------------------------------------------


@dataclass
class FederatedSearchResponse:
    """Merged results of several projects, each hit labelled with its project."""

    results: list[SearchResult]
    total_count: int
    latency_ms: float
    mode: str
    embedded_fraction: float
    truncated: bool = False
    notes: list[str] = field(default_factory=list)
    projects: list[ProjectOutcome] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class _QueryVector:
    """An embedder that answers the one query of a call with a vector made once."""

    def __init__(self, inner: Embedder, query: str) -> None:
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self._inner = inner
        self._query = query
        self.vector = inner.embed_query(query)

    def embed_documents(self, texts):
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str):
        if text == self._query:
            return self.vector
        return self._inner.embed_query(text)


# The distance of each hit's vector to the query's: the one quantity every
# project measures alike (one model, one query vector). By primary key, for
# the few hits a project returned.
_DISTANCES_SQL = (
    "SELECT id, embedding::halfvec <=> %s::halfvec FROM code_chunks "
    "WHERE id = ANY(%s) AND embedding IS NOT NULL"
)


def _hit_distances(
    *, project: Project, results: Sequence[SearchResult], query: _QueryVector | None
) -> dict[int, float]:
    """Return the cosine distance to the query of each hit's ranking chunk."""
    ids = [r.ranked_chunk_id for r in results if r.ranked_chunk_id is not None]
    if query is None or not ids:
        return {}
    alias = project_alias(project=project)
    space = EmbeddingSpace.objects.using(alias).first()
    if space is None or space.model_id != query.model_id:
        return {}
    literal = "[" + ",".join(f"{float(x):.7g}" for x in query.vector) + "]"
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(_DISTANCES_SQL, [literal, ids])
        return {row[0]: float(row[1]) for row in cursor.fetchall()}


@dataclass
class _Ranked:
    order: int  # the project's place in the call
    rank: int  # 1-based, in the project's own answer
    result: SearchResult
    distance: float | None
    fused: float = 0.0  # the project's own score: weighted reciprocal ranks


def results_merge_ranked(
    *,
    lists: Sequence[tuple[str, Sequence[SearchResult], dict[int, float]]],
    mode: str,
    limit: int,
) -> list[SearchResult]:
    """Merge the ranked answers of several projects into one, labelling each hit.

    Reciprocal rank fusion over lists whose order means the same in every
    project: the global semantic list (every hit by the cosine distance of
    its vector to the query: one model, one query vector) and each project's
    own lists, whose weighted reciprocal ranks (k + rank in the project) its
    fused score already sums. semantic: the global semantic rank alone, as
    one project holding every repository ranks. hybrid: SEARCH_SEMANTIC_WEIGHT
    / (k + global semantic rank) + the project's fused score. keyword: the
    project's fused score (keyword and definition ranks), then the rank in
    the project, ties (every project's first hit...) broken by the global
    semantic rank. Other ties go by the rank in the project, then the order
    of the projects. A hit's `score` becomes
    its merged score.
    """
    rrf_k = float(settings.SEARCH_RRF_K)
    weight_semantic = float(settings.SEARCH_SEMANTIC_WEIGHT)
    entries = []
    for order, (name, results, distances) in enumerate(lists):
        for rank, result in enumerate(results, start=1):
            result.project = name
            distance = distances.get(result.ranked_chunk_id)
            entries.append(_Ranked(order, rank, result, distance, result.score))
    by_distance = sorted(
        (e for e in entries if e.distance is not None),
        key=lambda e: (e.distance, e.rank, e.order),
    )
    global_rank = {id(e): place for place, e in enumerate(by_distance, start=1)}
    unranked = len(entries) + 1

    def semantic_part(entry: _Ranked) -> float:
        place = global_rank.get(id(entry))
        return weight_semantic / (rrf_k + place) if place else 0.0

    def merged(entry: _Ranked) -> tuple[tuple, float]:
        place = global_rank.get(id(entry), unranked)
        if mode == "semantic":
            score = semantic_part(entry)
            return (-score, place, entry.rank, entry.order), score
        if mode == "keyword":
            score = entry.fused
            return (-score, entry.rank, place, entry.order), score
        score = semantic_part(entry) + entry.fused
        return (-score, entry.rank, entry.order, place), score

    keyed = []
    for entry in entries:
        key, score = merged(entry)
        entry.result.score = round(score, 6)
        keyed.append((key, entry.result))
    keyed.sort(key=lambda pair: pair[0])
    return [result for _, result in keyed[:limit]]


def chunk_search_federated(
    *,
    projects: Sequence[Project],
    query: str,
    mode: str = "hybrid",
    limit: int = 10,
    repository: str | None = None,
    language: str | None = None,
    file_type: str | None = None,
    directory: str | None = None,
    path_glob: str | None = None,
    context_lines: int = 3,
    max_tokens: int | None = None,
    embedder: Embedder | None = None,
    timeout: float | None = None,
) -> FederatedSearchResponse:
    """Return the chunks of several projects that best answer a query, merged.

    The query is embedded once for all projects (once more for projects
    still on other shipped weights). Each project's hits carry its name in
    `project`; `projects` says how each one answered.
    """
    started = time.perf_counter()
    query = search_arguments_clean(
        query=query,
        mode=mode,
        limit=limit,
        max_tokens=max_tokens,
        context_lines=context_lines,
    )
    # Embedded once for every project, and the merge's common measure (in
    # keyword mode too, where it only breaks ties between projects, so an
    # embedder that cannot answer does not fail a keyword search).
    try:
        vector: _QueryVector | None = _QueryVector(embedder or embedder_get(), query)
    except IndexingError:
        if mode != "keyword":
            raise
        vector = None
    deadline = federation_timeout() if timeout is None else timeout
    # A project still on other shipped weights (embedder_for_space) gets the
    # query embedded by those, once per call. The merge then compares cosines
    # of two weight sets, on one scale: over 269 bench/quality.py questions the
    # best hit's cosine averaged 0.596 with each (difference 0.001, sd 0.029).
    kept_vectors: dict[str, _QueryVector] = {}
    kept_lock = threading.Lock()

    def project_vector(project: Project) -> _QueryVector | None:
        if vector is None or embedder is not None:
            return vector
        model_id = project_vector_state(alias=project_alias(project=project)).model_id
        if model_id is None or model_id == vector.model_id:
            return vector
        kept = embedder_for_space(model_id=model_id)
        if kept.model_id != model_id:
            return vector  # no shipped weights make them: the project's note says so
        with kept_lock:
            if model_id not in kept_vectors:
                try:
                    kept_vectors[model_id] = _QueryVector(kept, query)
                except IndexingError:
                    if mode != "keyword":
                        raise
                    return None  # keyword mode only broke ties with it
            return kept_vectors[model_id]

    def ask(project: Project) -> tuple[RankedSearch, dict[int, float]]:
        project_started = time.perf_counter()
        asked = project_vector(project)
        ranked = chunk_search_ranked(
            project=project,
            query=query,
            mode=mode,
            limit=limit,
            repository=repository,
            language=language,
            file_type=file_type,
            directory=directory,
            path_glob=path_glob,
            embedder=asked,
            statement_timeout_ms=int(deadline * 1000),
        )
        # Hybrid and semantic statements measured every row's similarity;
        # keyword mode asks for the distances of the few hits it returns.
        distances = {
            chunk: 1.0 - similarity for chunk, similarity in ranked.similarity.items()
        } or _hit_distances(project=project, results=ranked.results, query=asked)
        search_stat_record(
            alias=ranked.alias,
            latency_ms=round((time.perf_counter() - project_started) * 1000, 2),
            mode=mode,
        )
        return ranked, distances

    answers = projects_run(
        projects=projects,
        call=ask,
        count=lambda answer: len(answer[0].results),
        timeout=deadline,
    )
    answered = [a for a in answers if a.value is not None]
    results = results_merge_ranked(
        lists=[(a.project.name, a.value[0].results, a.value[1]) for a in answered],
        mode=mode,
        limit=limit,
    )
    # Context lines for the hits kept, not for every project's candidates.
    results_add_context(results, context_lines)
    truncated = False
    if max_tokens is not None:
        results, truncated = results_fit_budget(results, max_tokens)
    return FederatedSearchResponse(
        results=results,
        total_count=len(results),
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        mode=mode,
        # The least embedded project bounds how far vectors could rank.
        embedded_fraction=min(
            (a.value[0].embedded_fraction for a in answered), default=0.0
        ),
        truncated=truncated,
        notes=_failure_notes(answers)
        + _project_notes(answered, lambda answer: answer[0].notes),
        projects=[a.outcome for a in answers],
    )


# --- find_symbol ----------------------------------------------------------------


@dataclass
class FederatedSymbolSearch(SymbolSearch):
    """Definitions of a name over several projects, each labelled with its project."""

    projects: list[ProjectOutcome] = field(default_factory=list)


def symbol_find_federated(
    *,
    projects: Sequence[Project],
    name: str,
    kind: str | None = None,
    language: str | None = None,
    repository: str | None = None,
    path_glob: str | None = None,
    match: str = "exact",
    limit: int = 10,
    body_lines: int = 40,
    timeout: float | None = None,
) -> FederatedSymbolSearch:
    """Return the definitions of a name in several projects, merged by kind of match."""
    answers = projects_run(
        projects=projects,
        call=lambda project: symbol_find(
            project=project,
            name=name,
            kind=kind,
            language=language,
            repository=repository,
            path_glob=path_glob,
            match=match,
            limit=limit,
            body_lines=body_lines,
        ),
        count=lambda found: len(found.symbols),
        timeout=timeout,
    )
    answered = [a for a in answers if a.value is not None]
    keyed: list[tuple[tuple[int, int, int], SymbolHit]] = []
    for order, answer in enumerate(answered):
        for rank, hit in enumerate(answer.value.symbols):
            hit.project = answer.project.name
            keyed.append(((MATCH_ORDER.index(hit.match), rank, order), hit))
    keyed.sort(key=lambda pair: pair[0])
    hits = [hit for _, hit in keyed[:limit]]
    suggestions: dict[str, int] = {}
    for answer in answered:
        for suggestion in answer.value.suggestions:
            suggestions[suggestion.name] = (
                suggestions.get(suggestion.name, 0) + suggestion.definitions
            )
    total = sum(a.value.total for a in answered)
    first = answered[0].value if answered else None
    notes = _failure_notes(answers)
    if hits and total > len(hits):
        notes.append(
            f"{total} definitions match in {len(answered)} projects; showing "
            f"{len(hits)}. Raise limit or narrow with kind, language or path_glob."
        )
    # Each project's own "nothing found" and "N match" notes are said once
    # for all projects here.
    notes += _project_notes(
        answered,
        lambda found: [
            note
            for note in found.notes
            if not note.startswith(("No definition", f"{found.total} definitions"))
        ],
    )
    if answered and not hits:
        notes.append(
            f"No definition of `{first.query}` in {len(answered)} projects"
            + (
                "; did you mean "
                + ", ".join(
                    f"`{n}` ({c})"
                    for n, c in sorted(suggestions.items(), key=lambda i: -i[1])[
                        :SUGGESTIONS
                    ]
                )
                + "?"
                if suggestions
                else "."
            )
        )
    return FederatedSymbolSearch(
        query=first.query if first else name,
        match=first.match if first else match,
        symbols=hits,
        total=total,
        suggestions=[
            NameCount(name=n, definitions=c)
            for n, c in sorted(suggestions.items(), key=lambda i: -i[1])[:SUGGESTIONS]
        ],
        notes=notes,
        projects=[a.outcome for a in answers],
    )


# --- grep_code ---------------------------------------------------------------------


@dataclass
class FederatedGrepSearch(GrepSearch):
    """Matching lines of several projects grouped by file, each file labelled."""

    projects: list[ProjectOutcome] = field(default_factory=list)


def code_grep_federated(
    *,
    projects: Sequence[Project],
    pattern: str,
    max_matches: int = 100,
    timeout: float | None = None,
    **filters,
) -> FederatedGrepSearch:
    """Return the lines of several projects matching a pattern, project by project.

    `filters` are code_grep's (regex, case_sensitive, whole_word, repository,
    language, file_type, directory, path_glob, context_lines, max_per_file).
    """
    started = time.perf_counter()
    answers = projects_run(
        projects=projects,
        call=lambda project: code_grep(
            project=project, pattern=pattern, max_matches=max_matches, **filters
        ),
        count=lambda found: found.matches_shown,
        timeout=timeout,
    )
    answered = [a for a in answers if a.value is not None]
    files: list[GrepFile] = []
    shown = 0
    for answer in answered:
        for group in answer.value.files:
            if shown >= max_matches:
                break
            group.project = answer.project.name
            group.matches = group.matches[: max_matches - shown]
            shown += len(group.matches)
            files.append(group)
    total_lines = sum(a.value.matches for a in answered)
    first = answered[0].value if answered else None
    notes = _failure_notes(answers) + _project_notes(
        answered, lambda found: found.notes
    )
    if shown < sum(a.value.matches_shown for a in answered):
        notes.append(
            f"Showing {shown} of {total_lines} matching lines over "
            f"{len(answered)} projects; raise max_matches or narrow the search."
        )
    return FederatedGrepSearch(
        pattern=pattern,
        regex=first.regex if first else bool(filters.get("regex")),
        case_sensitive=first.case_sensitive if first else True,
        whole_word=first.whole_word if first else False,
        files=files,
        files_matched=sum(a.value.files_matched for a in answered),
        matches=total_lines,
        matches_shown=shown,
        truncated=shown < total_lines,
        totals_exact=all(a.value.totals_exact for a in answered),
        indexed=all(a.value.indexed for a in answered),
        candidate_files=sum(a.value.candidate_files for a in answered),
        files_scanned=sum(a.value.files_scanned for a in answered),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
        notes=notes,
        projects=[a.outcome for a in answers],
    )
