"""Search a project's chunks: vector, full-text, or both fused in one query.

Hybrid search runs both candidate lists as CTEs of one SQL statement and fuses
them by weighted reciprocal rank fusion, a keyword rank weighing as much as
the share of the query it covers; the weights come from `bench/quality.py`
(settings SEARCH_RRF_K, SEARCH_SEMANTIC_WEIGHT, SEARCH_KEYWORD_WEIGHT).
Filters are pushed into both candidate queries.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from indexing.chunking import LANGUAGE_BY_EXTENSION
from indexing.embedders import Embedder, embedder_get
from indexing.models import CodeChunk, EmbeddingSpace, Repository
from indexing.terms import identifier_split
from registry.databases import project_connection
from registry.models import Project
from registry.operations import search_stat_record
from registry.services import project_alias
from search.exceptions import (
    InvalidSearchQuery,
    ProjectSchemaOutdated,
    UnknownLanguage,
    UnknownRepository,
)

logger = logging.getLogger("codebase_mcp.search")

MODES = ("hybrid", "semantic", "keyword")
MAX_LIMIT = 50
MAX_QUERY_CHARS = 2000
MAX_FILTER_CHARS = 1000
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
class SearchResult:
    """One hit: where it is, what it is, and its code with some context."""

    file_path: str
    repository: str
    repository_id: str
    start_line: int
    end_line: int
    language: str
    symbol: str | None
    kind: str
    score: float
    content: str
    context_before: str = ""
    context_after: str = ""
    stale: bool = False


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


def known_languages() -> frozenset[str]:
    """Return every language name the indexer records."""
    return frozenset(LANGUAGE_BY_EXTENSION.values()) | {"text"}


def _check_encodable(name: str, text: str) -> None:
    # JSON can carry lone surrogates ("\ud800"); neither PostgreSQL nor the
    # tokenizer can take them, and they would fail deep inside either.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSearchQuery(
            f"The {name} holds characters that are not valid Unicode (lone "
            "surrogates); send UTF-8 text."
        ) from None


def _clean_query(query: object) -> str:
    if not isinstance(query, str):
        raise InvalidSearchQuery("The query must be text.")
    _check_encodable("query", query)
    cleaned = query.replace("\x00", " ").strip()
    if not cleaned:
        raise InvalidSearchQuery(
            "The query is empty; describe what you look for, e.g. "
            "'where is the retry logic for HTTP requests'."
        )
    if len(cleaned) > MAX_QUERY_CHARS:
        raise InvalidSearchQuery(
            f"The query has {len(cleaned)} characters; keep it under "
            f"{MAX_QUERY_CHARS} (a sentence or a few identifiers work best)."
        )
    return cleaned


def _clean_filter(name: str, value: object) -> str | None:
    """Return a filter's text, or raise InvalidSearchQuery if no column can hold it."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSearchQuery(f"{name} must be text.")
    # PostgreSQL text cannot hold NUL, and os.path refuses it.
    if "\x00" in value:
        raise InvalidSearchQuery(f"{name} must not contain NUL bytes.")
    if len(value) > MAX_FILTER_CHARS:
        raise InvalidSearchQuery(
            f"{name} has {len(value)} characters; keep it under {MAX_FILTER_CHARS}."
        )
    _check_encodable(name, value)
    return value


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


_ANY_DIRS, _ANYTHING, _ANY_NAME = "(.*/)?", ".*", "[^/]*"


def _add_wildcard(out: list[str], token: str) -> None:
    """Append a wildcard, merged with a wildcard right before it.

    Adjacent wildcards match no more than the wider one, but each adds to the
    time PostgreSQL spends compiling the pattern: "**" * 500 took seconds.
    """
    last = out[-1]
    if last == token:
        return
    if _ANYTHING in (last, token) and last in (_ANY_DIRS, _ANYTHING, _ANY_NAME):
        out[-1] = _ANYTHING
        return
    out.append(token)


def _glob_regex(glob: str) -> str:
    """Translate a path glob (`**`, `*`, `?`) into an anchored POSIX regex."""
    out = ["^"]
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            _add_wildcard(out, _ANY_DIRS)
            i += 3
            continue
        if glob.startswith("**", i):
            _add_wildcard(out, _ANYTHING)
            i += 2
            continue
        if char == "*":
            _add_wildcard(out, _ANY_NAME)
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    return "".join(out)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _resolve_repository(*, alias: str, repository: str) -> str:
    value = str(repository).strip()
    try:
        key = uuid.UUID(value)
    except ValueError:
        key = None
    queryset = Repository.objects.using(alias)
    found = (
        queryset.filter(id=key).first()
        if key
        else queryset.filter(path=os.path.realpath(os.path.expanduser(value))).first()
        or queryset.filter(name=value).first()
    )
    if found is None:
        known = ", ".join(queryset.values_list("path", flat=True)[:10]) or "none yet"
        raise UnknownRepository(
            f"No repository {value!r} in this project (indexed: {known}); pass a "
            "repository id or path, or index it first."
        )
    return str(found.id)


def _filters(
    *,
    alias: str,
    repository: str | None,
    language: str | None,
    file_type: str | None,
    directory: str | None,
    path_glob: str | None,
) -> tuple[str, dict[str, object]]:
    """Return a SQL condition on `c` (code_chunks) and its named parameters."""
    clauses: list[str] = []
    params: dict[str, object] = {}

    def param(value: object) -> str:
        name = f"f{len(params)}"
        params[name] = value
        return f"%({name})s"

    if repository:
        resolved = _resolve_repository(alias=alias, repository=repository)
        clauses.append(f"c.repository_id = {param(resolved)}")
    if language:
        name = language.strip().lower()
        if name not in known_languages():
            known = ", ".join(sorted(known_languages()))
            raise UnknownLanguage(f"Unknown language {language!r}; use one of: {known}.")
        clauses.append(f"c.language = {param(name)}")
    if file_type:
        extension = file_type.strip().lstrip("*").lstrip(".")
        if not extension or "/" in extension:
            raise InvalidSearchQuery(
                f"file_type {file_type!r} is not a file extension; use e.g. 'py' or '.ts'."
            )
        clauses.append(f"c.relative_path LIKE {param('%.' + _like_escape(extension))}")
    if directory:
        prefix = directory.strip().strip("/")
        if prefix.startswith("..") or "/../" in f"/{prefix}/":
            raise InvalidSearchQuery("directory must be a path inside the repository.")
        if prefix and prefix != ".":
            pattern = _like_escape(prefix) + "/%"
            clauses.append(f"c.relative_path LIKE {param(pattern)}")
    if path_glob:
        clauses.append(f"c.relative_path ~ {param(_glob_regex(path_glob.strip()))}")
    return (" AND ".join(clauses) or "TRUE"), params


_counts_cache: dict[str, tuple[float, int, int]] = {}
_counts_lock = threading.Lock()


def _embedded_counts(*, alias: str) -> tuple[int, int]:
    """Return (chunks, embedded chunks), cached for a few seconds per project."""
    now = time.monotonic()
    with _counts_lock:
        cached = _counts_cache.get(alias)
        if cached and now - cached[0] < 5.0:
            return cached[1], cached[2]
    total = CodeChunk.objects.using(alias).count()
    missing = CodeChunk.objects.using(alias).filter(embedding__isnull=True).count()
    with _counts_lock:
        _counts_cache[alias] = (now, total, total - missing)
    return total, total - missing


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
keyword AS (SELECT id, coverage,
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


def _candidate_sql(
    *,
    mode: str,
    dimension: int | None,
    where: str,
    websearch: bool,
) -> str:
    semantic = (
        "semantic AS ("
        " SELECT id, row_number() OVER () AS rank FROM ("
        f"  SELECT c.id FROM code_chunks c WHERE c.embedding IS NOT NULL AND {where}"
        f"  ORDER BY c.embedding::vector({dimension}) <=> %(qv)s::vector({dimension})"
        "  LIMIT %(k)s) s)"
    )
    keyword = _KEYWORD_SQL.format(
        where=where, websearch=_WEBSEARCH_FILTER if websearch else ""
    ).strip()
    if mode == "semantic":
        return (
            f"WITH {semantic}, fused AS (SELECT id, 1.0 / (%(rrf_k)s + rank) AS score "
            "FROM semantic)"
        )
    if mode == "keyword":
        return (
            f"WITH {keyword}, fused AS (SELECT id, 1.0 / (%(rrf_k)s + rank) AS score "
            "FROM keyword)"
        )
    return (
        f"WITH {semantic}, {keyword}, fused AS ("
        " SELECT coalesce(s.id, k.id) AS id,"
        "  coalesce(%(ws)s / (%(rrf_k)s + s.rank), 0)"
        "  + coalesce(%(wk)s * k.coverage / (%(rrf_k)s + k.rank), 0) AS score"
        " FROM semantic s FULL OUTER JOIN keyword k ON s.id = k.id)"
    )


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
) -> SearchResponse:
    """Return the chunks of a project that best answer a query.

    Raise InvalidSearchQuery, UnknownRepository or UnknownLanguage for bad
    input. Hybrid and semantic modes use whatever vectors exist: the response
    reports the embedded fraction, and hybrid falls back to keyword ranking for
    a project whose vectors come from another model than the configured one.
    """
    started = time.perf_counter()
    query = _clean_query(query)
    if mode not in MODES:
        raise InvalidSearchQuery(f"Unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidSearchQuery(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 50):
        raise InvalidSearchQuery("max_tokens must be an integer of at least 50.")
    if not isinstance(context_lines, int) or not 0 <= context_lines <= 50:
        raise InvalidSearchQuery("context_lines must be an integer from 0 to 50.")

    alias = project_alias(project=project)
    where, filter_params = _filters(
        alias=alias,
        repository=_clean_filter("repository", repository),
        language=_clean_filter("language", language),
        file_type=_clean_filter("file_type", file_type),
        directory=_clean_filter("directory", directory),
        path_glob=_clean_filter("path_glob", path_glob),
    )
    notes: list[str] = []
    total, embedded = _embedded_counts(alias=alias)
    effective_mode = mode
    dimension = None
    query_vector = None
    if mode != "keyword":
        space = EmbeddingSpace.objects.using(alias).first()
        embedder = embedder or embedder_get()
        if space is None or embedded == 0:
            notes.append("No chunk of this project is embedded yet; ranked by keywords.")
            effective_mode = "keyword"
        elif space.model_id != embedder.model_id:
            notes.append(
                f"The project's vectors come from {space.model_id}, not the configured "
                f"{embedder.model_id}; ranked by keywords. Re-embed with --reembed."
            )
            effective_mode = "keyword"
        else:
            dimension = space.dimension
            query_vector = _vector_literal(embedder.embed_query(query))
        if effective_mode == "keyword" and mode == "semantic":
            effective_mode = "semantic_unavailable"

    outdated = effective_mode in ("hybrid", "keyword") and not _keyword_tables_exist(
        alias=alias
    )
    if outdated:
        if effective_mode == "keyword":
            raise ProjectSchemaOutdated(f"Keyword search is unavailable: {_SCHEMA_HINT}.")
        notes.append(f"Ranked by vectors only: {_SCHEMA_HINT}.")
        effective_mode = "semantic"
    keyword_query = _keyword_query(query)
    candidates = max(limit * 4, 40)
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
            fetch=limit * 3,
        )
        rows = _run_query(alias=alias, statement=statement)
    results = _shape_results(rows=rows, context_lines=context_lines)
    results = _merge_overlapping(results)[:limit]
    truncated = False
    if max_tokens is not None:
        results, truncated = _fit_budget(results, max_tokens)
    response = SearchResponse(
        results=results,
        total_count=len(results),
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        mode=mode,
        embedded_fraction=round(embedded / total, 4) if total else 0.0,
        truncated=truncated,
        notes=notes,
    )
    search_stat_record(alias=alias, latency_ms=response.latency_ms, mode=mode)
    return response


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
) -> SearchStatement:
    """Build the statement chunk_search runs (bench/search_latency.py explains it)."""
    head = _candidate_sql(
        mode=mode,
        dimension=dimension,
        where=where,
        websearch=keyword_query.websearch is not None,
    )
    sql = (
        f"{head} SELECT c.id, c.relative_path, r.path, c.repository_id, c.start_line,"
        " c.end_line, c.language, c.symbol, c.kind, fused.score, c.content,"
        " f.sha256, f.size_bytes, f.mtime"
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
        "fetch": fetch,
    }
    # Enough HNSW candidates for the fused list; iterative scans (set with it)
    # keep filters from starving the vector side of results.
    ef_search = None if mode == "keyword" else max(40, candidates)
    return SearchStatement(sql=sql, params=params, ef_search=ef_search)


def _run_query(*, alias: str, statement: SearchStatement) -> list[tuple]:
    connection = project_connection(database_name=alias)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        if statement.ef_search is not None:
            cursor.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                [str(statement.ef_search)],
            )
        cursor.execute(statement.sql, statement.params)
        return cursor.fetchall()


class _FileCache:
    """Read each result file once per search: its lines and whether it changed."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}
        self._stale: dict[str, bool] = {}

    def stale(self, path: str, sha256: str, size: int, mtime: float) -> bool:
        if path not in self._stale:
            self._stale[path] = self._check(path, sha256, size, mtime)
        return self._stale[path]

    def _check(self, path: str, sha256: str, size: int, mtime: float) -> bool:
        try:
            stat = os.stat(path)
        except OSError:
            return True
        if stat.st_size == size and stat.st_mtime == mtime:
            return False
        try:
            with open(path, "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest() != sha256
        except OSError:
            return True

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            try:
                self._lines[path] = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                self._lines[path] = None
        return self._lines[path]


def _shape_results(*, rows: list[tuple], context_lines: int) -> list[SearchResult]:
    files = _FileCache()
    results = []
    for (
        _id, relative_path, repo_path, repo_id, start, end, language, symbol, kind,
        score, content, sha256, size, mtime,
    ) in rows:
        absolute = os.path.join(repo_path, relative_path)
        stale = files.stale(absolute, sha256, size, mtime)
        before = after = ""
        if context_lines and not stale:
            lines = files.lines(absolute)
            if lines is not None:
                before = "\n".join(lines[max(0, start - 1 - context_lines) : start - 1])
                after = "\n".join(lines[end : end + context_lines])
        results.append(
            SearchResult(
                file_path=relative_path,
                repository=repo_path,
                repository_id=str(repo_id),
                start_line=start,
                end_line=end,
                language=language,
                symbol=symbol,
                kind=kind,
                score=round(float(score), 6),
                content=content,
                context_before=before,
                context_after=after,
                stale=stale,
            )
        )
    return results


# Chunks of these kinds hold a header and member signatures but span the whole
# body; a member found inside one is the more useful answer.
CONTAINER_KINDS = frozenset(
    {"class", "interface", "struct", "trait", "impl", "object", "enum", "type"}
)


def _merge_overlapping(results: list[SearchResult]) -> list[SearchResult]:
    """Fold hits that overlap a better hit of the same file into it.

    A member (method, function) nested in a better-ranked container chunk
    takes the container's place and rank: the answer is the function, not the
    whole class around it.
    """
    kept: list[SearchResult] = []
    for result in results:
        for index, better in enumerate(kept):
            if (
                better.repository_id != result.repository_id
                or better.file_path != result.file_path
                or result.start_line > better.end_line
                or better.start_line > result.end_line
            ):
                continue
            nested = better.start_line <= result.start_line <= result.end_line <= (
                better.end_line
            )
            if (
                nested
                and better.kind in CONTAINER_KINDS
                and result.kind not in CONTAINER_KINDS
            ):
                result.score = better.score
                kept[index] = result
            elif (
                result.kind not in CONTAINER_KINDS
                and better.kind not in CONTAINER_KINDS
                and (result.start_line < better.start_line or result.end_line > better.end_line)
            ):
                # Only pieces of one split function or overlapping windows are
                # widened; a class around a better hit is dropped, not merged.
                better.content = _union_content(better, result)
                better.start_line = min(better.start_line, result.start_line)
                better.end_line = max(better.end_line, result.end_line)
            break
        else:
            kept.append(result)
    return kept


def _union_content(first: SearchResult, second: SearchResult) -> str:
    start = min(first.start_line, second.start_line)
    end = max(first.end_line, second.end_line)
    if not first.stale:
        try:
            lines = Path(first.repository, first.file_path).read_text(errors="replace")
            return "\n".join(lines.splitlines()[start - 1 : end])
        except OSError:
            pass
    ordered = sorted((first, second), key=lambda r: r.start_line)
    return "\n".join(r.content for r in ordered)


def _estimate_tokens(result: SearchResult) -> int:
    text_chars = (
        len(result.content)
        + len(result.context_before)
        + len(result.context_after)
        + len(result.file_path)
        + len(result.repository)
        + 120
    )
    return text_chars // 4 + 1


def _fit_budget(results: list[SearchResult], max_tokens: int) -> tuple[list[SearchResult], bool]:
    """Keep results while they fit the token budget; trim the first if it alone does not."""
    kept: list[SearchResult] = []
    used = 0
    for result in results:
        cost = _estimate_tokens(result)
        if used + cost > max_tokens:
            if not kept:
                result.context_before = result.context_after = ""
                room = max(0, (max_tokens - 40) * 4)
                result.content = result.content[:room]
                kept.append(result)
            return kept, True
        kept.append(result)
        used += cost
    return kept, False
