"""Search a project's chunks: vector, full-text, or both fused in one query.

Hybrid search runs both candidate lists as CTEs of one SQL statement and fuses
them by weighted reciprocal rank fusion, a keyword rank weighing as much as
the share of the query it covers; the weights come from `bench/quality.py`
(settings SEARCH_RRF_K, SEARCH_SEMANTIC_WEIGHT, SEARCH_KEYWORD_WEIGHT).
Filters are pushed into both candidate queries. With SEARCH_RERANK (the
default) the best fused candidates are reordered by search/ranking.py's
learned layer, fused by rank with the statement's order.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings

from indexing.embedders import Embedder, embedder_for_space, embedder_get
from indexing.embedders.minilm import shipped_weights_name
from indexing.freshness import freshness_note
from indexing.models import CodeChunk, EmbeddingSpace
from indexing.terms import identifier_split
from registry.databases import project_connection
from registry.models import Project
from registry.services import project_alias
from search.exceptions import InvalidSearchQuery, ProjectSchemaOutdated
from search.filters import chunk_filter_sql, query_clean
from search.ranking import ROW_COSINE, ranker_get, rows_rerank
from search.results import (
    SearchResult,
    results_add_context,
    results_fit_budget,
    results_merge_overlapping,
    results_shape,
)
from search.statistics import search_stat_record

logger = logging.getLogger("codebase_mcp.search")

MODES = ("hybrid", "semantic", "keyword")
MAX_LIMIT = 50
_WORD = re.compile(r"[A-Za-z0-9_]+")
# Search syntax a user may mean on purpose: "a phrase" and -word (or
# -"a phrase") at the start of a word, plus `or` between two of those. A
# dash before a digit is a number (-1), not an exclusion.
_SYNTAX_TOKEN = re.compile(
    r'(?P<syntax>(?<!\S)-?"[^"]*"?|(?<!\S)-[A-Za-z_]\S*)|(?P<other>\S+)'
)
# BM25 over the chunk's lexemes. A word's term frequency is 1 when the chunk
# holds it, plus HEADER_WEIGHT when its path or symbol does (tsvector weight
# A). On bench/quality.py's corpus (docstring MRR@10) a header weight of 3 beat
# 1 and 2 (0.436 / 0.406 / 0.429), b=0.5 did no better than the usual 0.75,
# and counting every occurrence ranked no better than this per-field flag.
BM25_K1 = 1.2
BM25_B = 0.75
HEADER_WEIGHT = 3


@dataclass
class SearchResponse:
    """Results plus what a client needs to trust them."""

    results: list[SearchResult]
    total_count: int
    latency_ms: float
    mode: str
    embedded_fraction: float
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class KeywordQuery:
    """What keyword search weighs, and the websearch filter a query asked for."""

    words: str
    websearch: str | None


def _keyword_query(query: str) -> KeywordQuery:
    """Return the words of a query to rank by, plus any websearch filter.

    Every word and the parts of every compound identifier are ranked by BM25
    (a plain question matches code by some of its words, never all of them).
    Quoted phrases and -exclusions are a filter (websearch_to_tsquery), joined
    by `or` where the query puts one between them; the other words of such a
    query only rank. So `where is the "retry-after" header read` needs the
    phrase, not every word of the sentence, and the `or` of a plain question
    ("its value or undefined") is just a word: before, either one turned the
    whole question into an all-words filter that most often matched nothing.
    """
    matches = list(_SYNTAX_TOKEN.finditer(query))
    tokens = [match.group() for match in matches]
    syntax = [match.group("syntax") is not None for match in matches]
    kept: list[str] = []
    wanted: list[str] = []
    for index, token in enumerate(tokens):
        if syntax[index]:
            kept.append(token)
        elif (
            token.lower() == "or"
            and 0 < index < len(tokens) - 1
            and syntax[index - 1]
            and syntax[index + 1]
        ):
            kept.append("or")
            continue
        if not (syntax[index] and token.startswith("-")):
            wanted.append(token)
    words: list[str] = []
    for token in _WORD.findall(" ".join(wanted)):
        words.append(token)
        parts = identifier_split(identifier=token)
        if len(parts) > 1:
            words.extend(parts)
    websearch = " ".join(kept) if any(syntax) else None
    return KeywordQuery(words=" ".join(dict.fromkeys(words)), websearch=websearch)


@dataclass(frozen=True)
class _VectorState:
    """How far a project is embedded, and by which model (EmbeddingSpace)."""

    total: int
    embedded: int
    model_id: str | None
    dimension: int | None


_state_cache: dict[str, tuple[float, _VectorState]] = {}
_state_lock = threading.Lock()


def _kept_weights_note(*, embedder: Embedder, explicit: bool) -> str | None:
    """Say so when a project's vectors are of shipped weights not configured."""
    if explicit:
        return None
    configured = embedder_get()
    if embedder.model_id == configured.model_id:
        return None
    kept = shipped_weights_name(model_id=embedder.model_id)
    wanted = shipped_weights_name(model_id=configured.model_id)
    better = " (the code weights rank better)" if wanted == "code" else ""
    return (
        f"This project is embedded with the {kept} MiniLM weights, not the "
        f"configured {wanted} ones; `manage.py index PATH --reembed` moves it"
        f"{better}."
    )


def project_vector_state(*, alias: str) -> _VectorState:
    """Return the project's chunk counts and embedding space, cached a few seconds.

    Every search needs them and they change only when an index run does; a
    federated search asks them of every project (the space alone was 0.7 ms
    a project).
    """
    now = time.monotonic()
    with _state_lock:
        cached = _state_cache.get(alias)
        if cached and now - cached[0] < 5.0:
            return cached[1]
    total = CodeChunk.objects.using(alias).count()
    missing = CodeChunk.objects.using(alias).filter(embedding__isnull=True).count()
    space = EmbeddingSpace.objects.using(alias).first()
    state = _VectorState(
        total=total,
        embedded=total - missing,
        model_id=space.model_id if space else None,
        dimension=space.dimension if space else None,
    )
    with _state_lock:
        _state_cache[alias] = (now, state)
    return state


_keyword_ready: set[str] = set()
_SCHEMA_HINT = (
    "this project's database predates keyword ranking (BM25 term counts); bring "
    "it up to date with `manage.py migrate_projects`"
)


def _keyword_tables_exist(*, alias: str) -> bool:
    """Return whether the project's schema has the term counts keyword search reads.

    A database of an older version works for vector search until
    `migrate_projects` runs; once found current, a project is not asked again.
    """
    if alias in _keyword_ready:
        return True
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT to_regclass('search_term_totals') IS NOT NULL")
        ready = bool(cursor.fetchone()[0])
    if ready:
        _keyword_ready.add(alias)
    return ready


_symbols_ready: set[str] = set()


def _symbol_table_exists(*, alias: str) -> bool:
    """Return whether the project's schema has the symbol table (cached once true)."""
    if alias in _symbols_ready:
        return True
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT to_regclass('code_symbols') IS NOT NULL")
        ready = bool(cursor.fetchone()[0])
    if ready:
        _symbols_ready.add(alias)
    return ready


def _vector_literal(vector) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


# Keyword candidates, ranked by BM25 in SQL:
# - qt: the query's lexemes that occur in the project, with their IDF, as
#   tsqueries (any weight, and header weight A), and how many chunks hold
#   them or rarer query words;
# - kc: the chunks holding one of the rarest words, found through the GIN
#   index, taking words as long as their chunk counts add up to at most
#   SEARCH_KEYWORD_SCAN_LIMIT (the rarest word always; should it alone hold
#   more chunks, no more than that many of them). Common words still add to
#   the score of these chunks; they only stop bringing in thousands of chunks
#   that rare words would outrank anyway;
# - keyword: each candidate's BM25 over all query words, and its coverage:
#   the share of the query's IDF its words hold. Hybrid fusion weighs the
#   keyword rank by coverage, so a chunk that shares one word with a
#   question cannot push aside what the vectors found (bench/quality.py
#   --grid, hand-written set at k=5, wk=1: plain RRF 0.16, weighted 0.22).
# kc holds each candidate's tsvector decompressed once (`|| ''`): a TOASTed
# value is otherwise fetched and decompressed again for every query word.
# Lexemes are quoted for the tsquery input syntax ('' and \\ escaped), which
# takes them as they are; to_tsquery would stem them a second time.
_KEYWORD_SQL = r"""
tot AS (SELECT greatest(chunks, 1)::float8 AS n,
    greatest(lexemes, 1)::float8 / greatest(chunks, 1) AS avgdl
    FROM search_term_totals WHERE id = 1),
qw AS (SELECT DISTINCT w AS lexeme,
    '''' || replace(replace(w, '\', '\\'), '''', '''''') || '''' AS quoted
    FROM unnest(tsvector_to_array(to_tsvector('english'::regconfig, %(kw)s))) AS w),
qt AS (SELECT qw.quoted, qw.quoted::tsquery AS any_q,
    (qw.quoted || ':A')::tsquery AS head_q,
    ln(1 + (tot.n - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf,
    t.chunks,
    sum(t.chunks) OVER (ORDER BY t.chunks, t.lexeme ROWS UNBOUNDED PRECEDING) AS upto
    FROM qw JOIN search_terms t ON t.lexeme = qw.lexeme CROSS JOIN tot),
cq AS (SELECT string_agg(quoted, ' | ')::tsquery AS query FROM qt
    WHERE upto <= %(scan)s OR upto = chunks),
kc AS MATERIALIZED (SELECT c.id, c.search_vector || ''::tsvector AS sv
    FROM code_chunks c, cq
    WHERE c.search_vector @@ cq.query AND {where}{websearch} LIMIT %(scan)s),
keyword AS (SELECT id, coverage, score,
    row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
    SELECT kc.id, sum(qt.idf * x.tf * (%(k1)s::float8 + 1) / (x.tf + kc.norm)) AS score,
        sum(qt.idf) / (SELECT sum(idf) FROM qt) AS coverage
    FROM (SELECT kc.id, kc.sv, %(k1)s::float8 * (1 - %(b)s::float8
            + %(b)s::float8 * length(kc.sv) / tot.avgdl) AS norm
          FROM kc CROSS JOIN tot) kc
    JOIN qt ON kc.sv @@ qt.any_q
    CROSS JOIN LATERAL (SELECT CASE WHEN kc.sv @@ qt.head_q THEN 1 + %(hw)s::float8
        ELSE 1 END AS tf) x
    GROUP BY kc.id ORDER BY score DESC, kc.id LIMIT %(k)s) s)
"""
# A filter of stop words only ("the") is no filter, not one that matches nothing.
_WEBSEARCH_FILTER = (
    " AND (numnode(websearch_to_tsquery('english'::regconfig, %(ws_query)s)) = 0"
    " OR c.search_vector @@ websearch_to_tsquery('english'::regconfig, %(ws_query)s))"
)


# Definitions the query names (a third ranked list, hybrid and keyword
# modes): the chunk of each definition whose name or qualified name is an
# identifier of the query, through the b-tree indexes of code_symbols.
_DEFINITIONS_SQL = """
defs AS (SELECT id, row_number() OVER (ORDER BY best, id) AS rank FROM (
    SELECT c.id, min(CASE WHEN s.qualified_name = ANY(%(idents)s) THEN 0 ELSE 1 END)
        AS best
    FROM code_symbols s JOIN code_chunks c ON c.id = s.chunk_id
        AND c.symbol = s.qualified_name
    WHERE (s.name = ANY(%(ident_names)s) OR s.qualified_name = ANY(%(idents)s))
        AND {where}
    GROUP BY c.id ORDER BY best, c.id LIMIT %(k)s) d)
"""
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*")
_CAMEL = re.compile(r"[a-z0-9][A-Z]")
MAX_QUERY_IDENTIFIERS = 8


def query_identifiers(query: str) -> list[str]:
    """Return the identifiers of a query that is made of identifiers only.

    A one-word query is an identifier; a longer one counts only when every
    word is code (snake_case, camelCase, dotted or `::` paths). In a sentence
    a named identifier is usually not the answer: on bench/quality.py's
    docstring set ("Creates a new CachePolicy instance"), bringing the
    definitions named in 147 of 985 sentences lowered hybrid MRR@10 from 0.525
    to 0.517, while queries that are a function's name rose from 0.879 to 0.968.
    """
    words = query.split()
    if len(words) == 1:
        return _IDENTIFIER.findall(query)[:MAX_QUERY_IDENTIFIERS]
    if not all(
        _IDENTIFIER.fullmatch(word)
        and (
            "_" in word.strip("_") or "." in word or "::" in word or _CAMEL.search(word)
        )
        for word in words
    ):
        return []
    return list(dict.fromkeys(words))[:MAX_QUERY_IDENTIFIERS]


# Every fused list carries the signals the ranking layer reads
# (search/ranking.py): each list's rank, BM25 score and coverage.
_NO_SEMANTIC = "NULL::bigint AS s_rank"
_NO_KEYWORD = "NULL::bigint AS k_rank, NULL::float8 AS coverage, NULL::float8 AS bm25"
_NO_DEFINITION = "NULL::bigint AS d_rank"


def _candidate_sql(
    *,
    mode: str,
    dimension: int | None,
    where: str,
    websearch: bool,
    definitions: bool = False,
) -> str:
    semantic = (
        "semantic AS ("
        " SELECT id, row_number() OVER () AS rank FROM ("
        f"  SELECT c.id FROM code_chunks c WHERE c.embedding IS NOT NULL AND {where}"
        f"  ORDER BY c.embedding::halfvec({dimension}) <=> %(qv)s::halfvec({dimension})"
        "  LIMIT %(k)s) s)"
    )
    keyword = _KEYWORD_SQL.format(
        where=where, websearch=_WEBSEARCH_FILTER if websearch else ""
    ).strip()
    if mode == "semantic":
        return (
            f"WITH {semantic}, fused AS (SELECT id, 1.0 / (%(rrf_k)s + rank) AS score,"
            f" rank AS s_rank, {_NO_KEYWORD}, {_NO_DEFINITION} FROM semantic)"
        )
    defs = _DEFINITIONS_SQL.format(where=where).strip() if definitions else ""
    if mode == "keyword":
        if not definitions:
            return (
                f"WITH {keyword}, fused AS (SELECT id, 1.0 / (%(rrf_k)s + rank) "
                f"AS score, {_NO_SEMANTIC}, rank AS k_rank, coverage, score AS bm25,"
                f" {_NO_DEFINITION} FROM keyword)"
            )
        return (
            f"WITH {keyword}, {defs}, fused AS ("
            " SELECT coalesce(k.id, d.id) AS id,"
            "  coalesce(1.0 / (%(rrf_k)s + k.rank), 0)"
            "  + coalesce(%(wd)s / (%(rrf_k)s + d.rank), 0) AS score,"
            f"  {_NO_SEMANTIC}, k.rank AS k_rank, k.coverage, k.score AS bm25,"
            "  d.rank AS d_rank"
            " FROM keyword k FULL OUTER JOIN defs d ON d.id = k.id)"
        )
    if not definitions:
        return (
            f"WITH {semantic}, {keyword}, fused AS ("
            " SELECT coalesce(s.id, k.id) AS id,"
            "  coalesce(%(ws)s / (%(rrf_k)s + s.rank), 0)"
            "  + coalesce(%(wk)s * k.coverage / (%(rrf_k)s + k.rank), 0) AS score,"
            "  s.rank AS s_rank, k.rank AS k_rank, k.coverage, k.score AS bm25,"
            f"  {_NO_DEFINITION}"
            " FROM semantic s FULL OUTER JOIN keyword k ON s.id = k.id)"
        )
    return (
        f"WITH {semantic}, {keyword}, {defs}, fused AS ("
        " SELECT coalesce(s.id, k.id, d.id) AS id,"
        "  coalesce(%(ws)s / (%(rrf_k)s + s.rank), 0)"
        "  + coalesce(%(wk)s * k.coverage / (%(rrf_k)s + k.rank), 0)"
        "  + coalesce(%(wd)s / (%(rrf_k)s + d.rank), 0) AS score,"
        "  s.rank AS s_rank, k.rank AS k_rank, k.coverage, k.score AS bm25,"
        "  d.rank AS d_rank"
        " FROM semantic s FULL OUTER JOIN keyword k ON s.id = k.id"
        " FULL OUTER JOIN defs d ON d.id = coalesce(s.id, k.id))"
    )


def search_arguments_clean(
    *,
    query: object,
    mode: object,
    limit: object,
    max_tokens: object,
    context_lines: object,
) -> str:
    """Check the arguments of a search that no project changes; return the query.

    Raise InvalidSearchQuery naming the first bad one.
    """
    query = query_clean(query)
    if mode not in MODES:
        raise InvalidSearchQuery(
            f"Unknown mode {mode!r}; use one of {', '.join(MODES)}."
        )
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= MAX_LIMIT
    ):
        raise InvalidSearchQuery(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 50):
        raise InvalidSearchQuery("max_tokens must be an integer of at least 50.")
    if not isinstance(context_lines, int) or not 0 <= context_lines <= 50:
        raise InvalidSearchQuery("context_lines must be an integer from 0 to 50.")
    return query


def chunk_search(
    *,
    project: Project,
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
    statement_timeout_ms: int | None = None,
) -> SearchResponse:
    """Return the chunks of a project that best answer a query.

    Raise InvalidSearchQuery, UnknownRepository or UnknownLanguage for bad
    input. Hybrid and semantic modes use whatever vectors exist: the response
    reports the embedded fraction, and hybrid falls back to keyword ranking for
    a project whose vectors come from another model than the configured one.
    `statement_timeout_ms` bounds the ranking statement in the server (a
    search over several projects gives each a deadline).
    """
    started = time.perf_counter()
    query = search_arguments_clean(
        query=query,
        mode=mode,
        limit=limit,
        max_tokens=max_tokens,
        context_lines=context_lines,
    )
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
        embedder=embedder,
        statement_timeout_ms=statement_timeout_ms,
    )
    results = ranked.results
    results_add_context(results, context_lines)
    truncated = False
    if max_tokens is not None:
        results, truncated = results_fit_budget(results, max_tokens)
    response = SearchResponse(
        results=results,
        total_count=len(results),
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        mode=mode,
        embedded_fraction=ranked.embedded_fraction,
        truncated=truncated,
        notes=ranked.notes,
    )
    search_stat_record(alias=ranked.alias, latency_ms=response.latency_ms, mode=mode)
    return response


@dataclass
class RankedSearch:
    """A project's best hits for a query before context lines are read."""

    alias: str
    results: list[SearchResult]
    embedded_fraction: float
    notes: list[str]
    # Cosine similarity to the query of each ranked row's vector (hybrid and
    # semantic modes), by chunk id: a search over several projects merges by it.
    similarity: dict[int, float]


def chunk_search_ranked(
    *,
    project: Project,
    query: str,
    mode: str = "hybrid",
    limit: int = 10,
    repository: str | None = None,
    language: str | None = None,
    file_type: str | None = None,
    directory: str | None = None,
    path_glob: str | None = None,
    embedder: Embedder | None = None,
    statement_timeout_ms: int | None = None,
) -> RankedSearch:
    """Rank a project's chunks for a checked query; return the best `limit`, merged.

    chunk_search's work up to the answer's shape: no context lines, no token
    budget, nothing recorded. The query, mode and limit are taken as
    search_arguments_clean left them.
    """
    alias = project_alias(project=project)
    where, filter_params = chunk_filter_sql(
        alias=alias,
        repository=repository,
        language=language,
        file_type=file_type,
        directory=directory,
        path_glob=path_glob,
    )
    notes: list[str] = []
    stale = freshness_note(alias=alias)
    if stale:
        notes.append(stale)
    state = project_vector_state(alias=alias)
    total, embedded = state.total, state.embedded
    effective_mode = mode
    dimension = None
    query_vector = None
    if mode != "keyword":
        explicit_embedder = embedder is not None
        embedder = embedder or embedder_for_space(model_id=state.model_id)
        if state.model_id is None or embedded == 0:
            notes.append(
                "No chunk of this project is embedded yet; ranked by keywords."
            )
            effective_mode = "keyword"
        elif state.model_id != embedder.model_id:
            notes.append(
                f"The project's vectors come from {state.model_id}, not the configured "
                f"{embedder.model_id}; ranked by keywords. Re-embed with --reembed."
            )
            effective_mode = "keyword"
        else:
            dimension = state.dimension
            query_vector = _vector_literal(embedder.embed_query(query))
            kept = _kept_weights_note(embedder=embedder, explicit=explicit_embedder)
            if kept:
                notes.append(kept)
        if effective_mode == "keyword" and mode == "semantic":
            effective_mode = "semantic_unavailable"

    outdated = effective_mode in ("hybrid", "keyword") and not _keyword_tables_exist(
        alias=alias
    )
    if outdated:
        if effective_mode == "keyword":
            raise ProjectSchemaOutdated(
                f"Keyword search is unavailable: {_SCHEMA_HINT}."
            )
        notes.append(f"Ranked by vectors only: {_SCHEMA_HINT}.")
        effective_mode = "semantic"
    keyword_query = _keyword_query(query)
    candidates = max(limit * 4, 40)
    rerank = effective_mode == "hybrid" and bool(settings.SEARCH_RERANK)
    depth = int(settings.SEARCH_RERANK_DEPTH)
    rows: list[tuple] = []
    if effective_mode != "semantic_unavailable":
        statement = search_statement(
            mode=effective_mode,
            dimension=dimension,
            where=where,
            filter_params=filter_params,
            keyword_query=keyword_query,
            query_vector=query_vector,
            candidates=candidates,
            fetch=max(limit * 3, depth) if rerank else limit * 3,
            identifiers=(
                query_identifiers(query) if _symbol_table_exists(alias=alias) else []
            ),
        )
        rows = _run_query(
            alias=alias, statement=statement, timeout_ms=statement_timeout_ms
        )
        if rerank:
            rows = rows_rerank(
                query=query,
                rows=rows,
                ranker=ranker_get(model_id=state.model_id),
                rrf_k=float(settings.SEARCH_RRF_K),
                depth=depth,
                fuse_weight=float(settings.SEARCH_RERANK_FUSE_WEIGHT) or None,
            )[: limit * 3]
    results = results_merge_overlapping(results_shape(rows=rows))[:limit]
    return RankedSearch(
        alias=alias,
        results=results,
        embedded_fraction=round(embedded / total, 4) if total else 0.0,
        notes=notes,
        similarity={
            row[0]: float(row[ROW_COSINE])
            for row in rows
            if row[ROW_COSINE] is not None
        },
    )


@dataclass(frozen=True)
class SearchStatement:
    """The one SQL statement of a search, its parameters and its HNSW setting."""

    sql: str
    params: dict[str, object]
    ef_search: int | None


def search_statement(
    *,
    mode: str,
    dimension: int | None,
    where: str,
    filter_params: dict[str, object],
    keyword_query: KeywordQuery,
    query_vector: str | None,
    candidates: int,
    fetch: int,
    identifiers: list[str] | None = None,
) -> SearchStatement:
    """Build the statement chunk_search runs (bench/search_latency.py explains it).

    `identifiers` (of the query) add the definitions they name as a third
    ranked list, weighted SEARCH_DEFINITION_WEIGHT; none or a weight of 0
    leaves the statement as it was.
    """
    weight = float(settings.SEARCH_DEFINITION_WEIGHT)
    definitions = bool(identifiers) and weight > 0 and mode in ("hybrid", "keyword")
    head = _candidate_sql(
        mode=mode,
        dimension=dimension,
        where=where,
        websearch=keyword_query.websearch is not None,
        definitions=definitions,
    )
    cosine = (
        f"1 - (c.embedding::vector({dimension}) <=> %(qv)s::vector({dimension}))"
        if dimension and mode != "keyword"
        else "NULL::float8"
    )
    # The select list is read by position: results_shape the first 14
    # columns, search/ranking.py's ROW_* names the signals after them.
    sql = (
        f"{head} SELECT c.id, c.relative_path, r.path, c.repository_id, c.start_line,"
        " c.end_line, c.language, c.symbol, c.kind, fused.score, c.content,"
        " f.sha256, f.size_bytes, f.mtime, fused.s_rank, fused.k_rank,"
        f" fused.coverage, fused.bm25, fused.d_rank, {cosine}"
        " FROM fused JOIN code_chunks c ON c.id = fused.id"
        " JOIN code_files f ON f.id = c.file_id"
        " JOIN repositories r ON r.id = c.repository_id"
        " ORDER BY fused.score DESC, c.id LIMIT %(fetch)s"
    )
    params = {
        **filter_params,
        "kw": keyword_query.words,
        "ws_query": keyword_query.websearch,
        "k1": BM25_K1,
        "b": BM25_B,
        "hw": HEADER_WEIGHT,
        "qv": query_vector,
        "k": candidates,
        "scan": int(settings.SEARCH_KEYWORD_SCAN_LIMIT),
        "rrf_k": float(settings.SEARCH_RRF_K),
        "ws": float(settings.SEARCH_SEMANTIC_WEIGHT),
        "wk": float(settings.SEARCH_KEYWORD_WEIGHT),
        "wd": weight,
        "idents": [i.replace("::", ".") for i in identifiers or []],
        "ident_names": [
            i.replace("::", ".").rsplit(".", 1)[-1] for i in identifiers or []
        ],
        "fetch": fetch,
    }
    # Enough HNSW candidates for the fused list, at least the configured
    # breadth; iterative scans (set with it) keep filters from starving the
    # vector side of results.
    ef_search = (
        None
        if mode == "keyword"
        else max(int(settings.SEARCH_HNSW_EF_SEARCH), candidates)
    )
    return SearchStatement(sql=sql, params=params, ef_search=ef_search)


def _run_query(
    *, alias: str, statement: SearchStatement, timeout_ms: int | None = None
) -> list[tuple]:
    """Run a search statement with its settings in one round trip; return its rows.

    The settings and the statement go as one simple query, which PostgreSQL
    runs as one implicit transaction: settings made local (set_config(...,
    true)) hold for the statement and end with it, as SET LOCAL in BEGIN ...
    COMMIT did in five round trips (a federated search pays them per project).
    """
    params = dict(statement.params)
    settings_sql = []
    if timeout_ms is not None:
        settings_sql.append("set_config('statement_timeout', %(run_timeout)s, true)")
        params["run_timeout"] = str(max(1, int(timeout_ms)))
    if statement.ef_search is not None:
        # Iterative scans keep filters from starving the vector side of results.
        settings_sql.append("set_config('hnsw.ef_search', %(run_ef)s, true)")
        settings_sql.append("set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        params["run_ef"] = str(statement.ef_search)
    sql = statement.sql
    if settings_sql:
        sql = f"SELECT {', '.join(settings_sql)}; {sql}"
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(sql, params)
        if settings_sql:
            cursor.nextset()
        return cursor.fetchall()
