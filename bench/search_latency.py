"""Time hybrid search at 10k and 100k chunks: p50/p95, query embedding included.

Run: cd /work/main && CODEBASE_MCP_HOME=/tmp/cbbench .venv/bin/python \
         bench/search_latency.py [--queries 300] [--explain 3] [--points 10000,100000]

The chunks are synthetic but go through the real store path: plausible
Python files (functions built from a Zipf-distributed vocabulary) are written
to disk and stored by `repository_index(embed=False)`, so content, terms and
tsvectors are what the indexer makes. Vectors are random unit vectors drawn
by PostgreSQL, recorded under the configured embedder's model id, and the
HNSW index is built by `embedding_index_ensure`. Queries are distinct
sentences embedded by the real model: embedding, search without embedding,
and search with it are reported apart. With --explain, EXPLAIN ANALYZE of a
few hybrid statements at the largest point shows where the time goes.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
import uuid
from pathlib import Path

from machine import django_setup, machine_description, percentile

DIMENSION = 384
_VECTOR_LITERAL = re.compile(r"\[[-0-9.e,]{200,}\]")
FUNCTIONS_PER_FILE = 20

VERBS = (
    "get set parse load save build create update delete find check render send "
    "read write open close resolve validate format convert compute merge split "
    "join fetch retry encode decode hash sign verify register handle dispatch "
    "normalize serialize flush reset start stop apply collect filter sort"
).split()
NOUNS = (
    "user request response header cookie session token file path config cache "
    "index record query result item node tree list buffer stream socket "
    "connection url host port message event handler job task queue worker lock "
    "timeout version package module template context account payment invoice "
    "order customer address email password key value entry field schema table "
    "column row image thumbnail upload download archive backup log metric span "
    "trace error retry policy limit quota permission role group tenant project"
).split()
ERRORS = "ValueError KeyError TimeoutError PermissionError RuntimeError".split()
QUERY_FORMS = (
    "how do we {verb} the {noun} when the {noun2} is missing",
    "where is the {noun} {noun2} {verb} logic",
    "{verb} {noun} after the {noun2} times out",
    "code that will {verb} a {noun} and {verb2} its {noun2}",
    "function to {verb} every {noun} in the {noun2}",
    "what handles {noun} {noun2} errors during {verb}",
)


def _zipf_choice(rng: random.Random, words: list[str]) -> str:
    """Pick a word with probability falling as 1/rank, as words in code do."""
    weights = getattr(_zipf_choice, "_weights", {}).get(len(words))
    if weights is None:
        weights = [1 / (rank + 1) for rank in range(len(words))]
        _zipf_choice._weights = {
            **getattr(_zipf_choice, "_weights", {}),
            len(words): weights,
        }
    return rng.choices(words, weights=weights)[0]


def function_text(rng: random.Random) -> str:
    """Return one plausible Python function of 8 to 30 lines."""
    verb, noun, noun2 = (
        _zipf_choice(rng, VERBS),
        _zipf_choice(rng, NOUNS),
        _zipf_choice(rng, NOUNS),
    )
    name = f"{verb}_{noun}_{noun2}" if rng.random() < 0.5 else f"{verb}_{noun}"
    lines = [
        f"def {name}({noun}, {noun2}_id: int, timeout: float = 30.0):",
        f"    {noun2} = registry.{_zipf_choice(rng, VERBS)}_{noun2}({noun2}_id)",
        f"    if {noun2} is None:",
        f'        raise {rng.choice(ERRORS)}(f"no {noun2} {{{noun2}_id}} for {noun}")',
    ]
    for _ in range(rng.randint(2, 8)):
        other = _zipf_choice(rng, NOUNS)
        action = _zipf_choice(rng, VERBS)
        form = rng.randrange(4)
        if form == 0:
            lines.append(
                f"    {other} = {noun}.{action}_{other}({noun2}, timeout=timeout)"
            )
        elif form == 1:
            lines += [
                f"    for {other} in {noun2}.{other}s:",
                f"        {action}_{other}({other}, {noun})",
            ]
        elif form == 2:
            lines += [
                f"    if not {noun}.{other}:",
                f'        logger.warning("{action} {other} skipped: %s", {noun2}_id)',
            ]
        else:
            lines += [
                "    try:",
                f"        {noun2}.{action}({other}={noun}.{other})",
                f"    except {rng.choice(ERRORS)}:",
                f"        {noun2}.{_zipf_choice(rng, VERBS)}_{other} = None",
            ]
    lines.append(f"    return {noun2}")
    return "\n".join(lines) + "\n"


def files_write(*, root: Path, first: int, count: int, seed: int) -> None:
    """Write `count` Python files of FUNCTIONS_PER_FILE functions under `root`."""
    rng = random.Random(seed)
    for number in range(first, first + count):
        folder = root / f"{_zipf_choice(rng, NOUNS)}s" / f"{_zipf_choice(rng, NOUNS)}"
        folder.mkdir(parents=True, exist_ok=True)
        body = (
            "import logging\n\nlogger = logging.getLogger(__name__)\n\n\n"
            + "\n\n".join(function_text(rng) for _ in range(FUNCTIONS_PER_FILE))
        )
        (folder / f"{_zipf_choice(rng, VERBS)}_{number}.py").write_text(body)


def queries_make(count: int, seed: int) -> list[str]:
    """Return `count` distinct natural-language queries."""
    rng = random.Random(seed)
    queries: dict[str, None] = {}
    while len(queries) < count:
        form = rng.choice(QUERY_FORMS)
        queries[
            form.format(
                verb=rng.choice(VERBS),
                verb2=rng.choice(VERBS),
                noun=rng.choice(NOUNS),
                noun2=rng.choice(NOUNS),
            )
        ] = None
    return list(queries)


def vectors_fill(*, alias: str) -> int:
    """Give every chunk without a vector a random unit vector; return how many.

    PostgreSQL draws them (normal components, then normalised: uniform on the
    sphere), so no 100k x 384 floats travel through Python.
    """
    from django.db import transaction

    from registry.databases import project_connection

    with (
        transaction.atomic(using=alias),
        project_connection(database_name=alias).cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE code_chunks SET embedding = l2_normalize(ARRAY("
            f" SELECT random_normal() FROM generate_series(1, {DIMENSION})"
            " WHERE code_chunks.id IS NOT NULL)::vector)"
            " WHERE embedding IS NULL"
        )
        return cursor.rowcount


def index_drop(*, alias: str) -> None:
    """Drop the HNSW index, so that bulk vector writes need not maintain it."""
    from registry.databases import project_connection

    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS code_chunks_embedding_hnsw_{DIMENSION}")


def index_build(*, alias: str) -> float:
    """Build the HNSW index as the indexer does, then vacuum; return seconds."""
    from indexing.services import embedding_index_ensure
    from registry.databases import project_connection

    started = time.monotonic()
    with project_connection(database_name=alias).cursor() as cursor:
        # A graph that fits in memory builds several times faster.
        cursor.execute("SET maintenance_work_mem = '1GB'")
        embedding_index_ensure(alias=alias, dimension=DIMENSION)
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("VACUUM ANALYZE code_chunks")
    return time.monotonic() - started


class FixedVector:
    """An embedder whose query vectors were computed beforehand."""

    def __init__(self, inner, vectors: dict) -> None:
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.vectors = vectors

    def embed_documents(self, texts):
        raise RuntimeError("only queries are embedded here")

    def embed_query(self, text: str):
        return self.vectors[text]


def line(label: str, samples: list[float]) -> str:
    """Format p50/p95/mean of millisecond samples."""
    p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
    return (
        f"  {label:<44} n={len(samples):<4} p50 {p50:7.2f} ms  "
        f"p95 {p95:7.2f} ms  mean {statistics.mean(samples):7.2f} ms"
    )


def measure(*, project, embedder, queries: list[str], warmup: int) -> None:
    """Print embedding, search-only and end-to-end latencies of the queries."""
    from django.conf import settings

    from search.selectors import chunk_search

    default_rerank = settings.SEARCH_RERANK
    for query in queries[:warmup]:
        chunk_search(project=project, query=query, mode="hybrid", embedder=embedder)
    embed_ms: list[float] = []
    vectors = {}
    for query in queries:
        started = time.perf_counter()
        vectors[query] = embedder.embed_query(query)
        embed_ms.append((time.perf_counter() - started) * 1000)
    fixed = FixedVector(embedder, vectors)
    searched: dict[str, list[float]] = {"hybrid": [], "semantic": [], "keyword": []}
    for mode in searched:
        for query in queries:
            started = time.perf_counter()
            chunk_search(project=project, query=query, mode=mode, embedder=fixed)
            searched[mode].append((time.perf_counter() - started) * 1000)
    # The ranking layer (SEARCH_RERANK) on and off, alternating query by
    # query so that other load on the machine hits both alike.
    layer: dict[bool, list[float]] = {True: [], False: []}
    for index, query in enumerate(queries):
        for rerank in (index % 2 == 0, index % 2 == 1):
            settings.SEARCH_RERANK = rerank
            started = time.perf_counter()
            chunk_search(project=project, query=query, mode="hybrid", embedder=fixed)
            layer[rerank].append((time.perf_counter() - started) * 1000)
    settings.SEARCH_RERANK = default_rerank
    total_ms: list[float] = []
    for query in reversed(queries):
        started = time.perf_counter()
        chunk_search(project=project, query=query, mode="hybrid", embedder=embedder)
        total_ms.append((time.perf_counter() - started) * 1000)
    print(line("query embedding alone", embed_ms))
    for mode, samples in searched.items():
        print(line(f"{mode} search, vector given", samples))
    for rerank, samples in layer.items():
        print(
            line(f"hybrid, vector given, re-rank {'on' if rerank else 'off'}", samples)
        )
    ratio = percentile(layer[True], 0.95) / percentile(layer[False], 0.95)
    print(f"  re-rank on / off at p95: x {ratio:.2f}")
    print(line("hybrid search with query embedding (end to end)", total_ms))


def explain(*, project, embedder, queries: list[str]) -> None:
    """Print EXPLAIN ANALYZE of hybrid statements built as chunk_search builds them.

    Uses the selector's private SQL builders, so the statement is the one
    chunk_search runs, not a copy that could drift.
    """
    from django.db import transaction

    from registry.databases import project_connection
    from registry.services import project_alias
    from search import selectors

    alias = project_alias(project=project)
    limit = 10
    candidates = max(limit * 4, 40)
    for query in queries:
        statement = selectors.search_statement(
            mode="hybrid",
            dimension=DIMENSION,
            where="TRUE",
            filter_params={},
            keyword_query=selectors._keyword_query(query),
            query_vector=selectors._vector_literal(embedder.embed_query(query)),
            candidates=candidates,
            fetch=limit * 3,
        )
        connection = project_connection(database_name=alias)
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                [str(statement.ef_search)],
            )
            cursor.execute(
                "SELECT count(*) FROM code_chunks c WHERE c.search_vector @@ "
                "replace(plainto_tsquery('english'::regconfig, %(kw)s)::text, '&', '|')"
                "::tsquery",
                statement.params,
            )
            matching = cursor.fetchone()[0]
            cursor.execute(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement.sql}", statement.params
            )
            plan = "\n".join(
                f"    {_VECTOR_LITERAL.sub('[...]', row[0])}"
                for row in cursor.fetchall()
            )
        print(
            f"\n  EXPLAIN ANALYZE hybrid {query!r} "
            f"({matching} chunks hold a word of the query)"
        )
        print(plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--points",
        default="10000,100000",
        help="comma-separated chunk counts to measure at (default 10000,100000)",
    )
    parser.add_argument(
        "--queries", type=int, default=300, help="timed queries per point (>= 200)"
    )
    parser.add_argument("--warmup", type=int, default=30, help="untimed queries first")
    parser.add_argument(
        "--explain",
        type=int,
        default=3,
        help="EXPLAIN ANALYZE this many hybrid queries at the largest point",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the project and its files afterwards"
    )
    args = parser.parse_args()
    points = sorted(int(value) for value in args.points.split(","))

    django_setup()
    import shutil

    from django.conf import settings
    from django.core.management import call_command

    from indexing.embedders import embedder_get
    from indexing.models import CodeChunk, EmbeddingSpace
    from indexing.services import repository_index
    from registry.services import project_alias, project_create, project_delete

    call_command("migrate", verbosity=0)
    print(machine_description())
    embedder = embedder_get()
    print(
        f"settings: embedder {embedder.model_id}; "
        f"SEARCH_RRF_K={settings.SEARCH_RRF_K:g} "
        f"SEARCH_SEMANTIC_WEIGHT={settings.SEARCH_SEMANTIC_WEIGHT:g} "
        f"SEARCH_KEYWORD_WEIGHT={settings.SEARCH_KEYWORD_WEIGHT:g} "
        "SEARCH_KEYWORD_SCAN_LIMIT="
        f"{getattr(settings, 'SEARCH_KEYWORD_SCAN_LIMIT', 'none')} "
        "SEARCH_DEFINITION_WEIGHT="
        f"{getattr(settings, 'SEARCH_DEFINITION_WEIGHT', 'none')} "
        f"SEARCH_RERANK={settings.SEARCH_RERANK} "
        f"SEARCH_RERANK_DEPTH={settings.SEARCH_RERANK_DEPTH}; limit 10, "
        "40 candidates per list, hnsw.ef_search 40"
    )
    project = project_create(name=f"bench-latency-{uuid.uuid4().hex[:8]}")
    root = Path(settings.CODEBASE_MCP_HOME) / "bench-latency" / project.name
    alias = project_alias(project=project)
    queries = queries_make(args.queries + args.warmup, seed=11)
    try:
        EmbeddingSpace.objects.using(alias).create(
            model_id=embedder.model_id, dimension=DIMENSION
        )
        files = 0
        for point in points:
            started = time.monotonic()
            while CodeChunk.objects.using(alias).count() < point:
                have = CodeChunk.objects.using(alias).count()
                # About 21 chunks a file (20 functions and the module's head).
                more = max(1, (point - have) // (FUNCTIONS_PER_FILE + 1))
                files_write(root=root, first=files, count=more, seed=files)
                files += more
                repository_index(project=project, repo_path=str(root), embed=False)
            store = time.monotonic() - started
            started = time.monotonic()
            index_drop(alias=alias)
            filled = vectors_fill(alias=alias)
            fill = time.monotonic() - started
            build = index_build(alias=alias)
            chunks = CodeChunk.objects.using(alias).count()
            print(
                f"\n{chunks} chunks in {files} files: stored in {store:.0f} s, "
                f"{filled} random vectors in {fill:.0f} s, "
                f"HNSW index built in {build:.0f} s"
            )
            measure(
                project=project,
                embedder=embedder,
                queries=queries[args.warmup :],
                warmup=args.warmup,
            )
            if point == points[-1] and args.explain:
                explain(
                    project=project,
                    embedder=embedder,
                    queries=queries[args.warmup : args.warmup + args.explain],
                )
    finally:
        if not args.keep:
            project_delete(project=project)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
