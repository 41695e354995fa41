"""How every cost grows from 10k to 100k (and, with --full, 1M) chunks.

Run: CODEBASE_MCP_HOME=/tmp/bench-scale .venv/bin/python bench/scale_bench.py \
         [--points 10000,100000] [--full] [--queries 200] [--build-compare] [--keep]
         [--real-vectors] [--store-only]
     ... bench/scale_bench.py --measure bench-scale-1000000-abc123  (a kept project:
         latencies again, in-process and through stdio runmcp)

Each point is a project of its own, stored cold from files on disk through
the real store path (`repository_index(embed=False)`: walk, tree-sitter,
chunks, symbols, references, text segments, BM25 term counts), so the
figures are what a user's first `index` costs before embedding.

Corpus: real Python files of this virtualenv's site-packages, copied as many
times as the point needs. Copy n > 0 of a file renames every `def`/`class`
name it defines (suffix `_vN`), so definitions, header terms and find_symbol
names grow with the corpus as in a real monorepo while bodies keep the term
statistics of real code. Vectors are random unit vectors drawn by PostgreSQL
(the worst case for an HNSW graph: no clusters), recorded under the
configured model's id; queries are embedded by the real model once, and the
search timings take the vector as given.

Per point: store seconds; vector fill seconds; HNSW build seconds and peak
RSS of the building processes (with --build-compare also with the server's
defaults: 64 MB maintenance_work_mem, no parallel workers); BM25 term table
rows and bytes; bytes per chunk of the table, its TOAST and each index;
hybrid/semantic/keyword p50/p95 in-process; find_symbol and grep_code p95.
The growth table gives each cost at every point and its exponent b in
cost ~ chunks^b between the first and last point.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import resource
import shutil
import threading
import time
import uuid
from pathlib import Path

from machine import django_setup, machine_description, percentile
from search_latency import FixedVector, queries_make, vectors_fill

DIMENSION = 384
SITE_PACKAGES = Path(os.__file__).resolve().parent  # replaced in main()
_DEFINED = re.compile(r"^(\s*(?:async\s+def|def|class)\s+)([A-Za-z_]\w*)", re.M)
_IDENT = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def pool_files(*, min_bytes: int = 800, max_bytes: int = 60_000) -> list[Path]:
    """Return the real Python files the corpus is drawn from, in a fixed order."""
    import site

    roots = [Path(p) for p in site.getsitepackages()]
    files = sorted(
        path
        for root in roots
        for path in root.rglob("*.py")
        if min_bytes <= path.stat().st_size <= max_bytes
        and not any(
            part in ("tests", "test", "_vendor", "vendor") for part in path.parts
        )
    )
    return files


def corpus_write(*, root: Path, pool: list[Path], files: int, seed: int) -> int:
    """Write `files` files under `root` (copies of pool files); return bytes written."""
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    written = 0
    texts: dict[int, str] = {}
    for number in range(files):
        source = order[number % len(order)]
        copy = number // len(order)
        text = texts.get(source)
        if text is None:
            text = pool[source].read_text(errors="replace")
            texts[source] = text
        if copy:
            text = _DEFINED.sub(
                lambda m, c=copy: f"{m.group(1)}{m.group(2)}_v{c}", text
            )
        target = root / f"copy{copy:03}" / f"f{source:05}_{pool[source].name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written += len(text)
    return written


def chunks_per_file(*, pool: list[Path], sample: int = 300) -> float:
    """Estimate the mean chunks a pool file yields, from a sample chunked here."""
    from django.conf import settings

    from indexing.chunking import file_analyse

    rng = random.Random(7)
    picked = rng.sample(pool, min(sample, len(pool)))
    counts = []
    for path in picked:
        analysis = file_analyse(
            text=path.read_text(errors="replace"),
            language="python",
            max_chars=settings.INDEX_CHUNK_MAX_CHARS,
        )
        counts.append(len(analysis.chunks))
    return sum(counts) / len(counts)


class PeakRss:
    """Sample the RSS of the given backend and of parallel workers until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _workers(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if command.startswith(b"postgres: parallel worker"):
                    pids.append(int(entry.name))
        return pids

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            total = self._rss_kb(self.pid) + sum(
                self._rss_kb(p) for p in self._workers()
            )
            self.peak_kb = max(self.peak_kb, total)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def index_build(*, alias: str, build_settings: dict | None) -> tuple[float, float]:
    """Build the HNSW index as the indexer does; return (seconds, peak RSS MB)."""
    from indexing.services import embedding_index_ensure
    from registry.databases import project_connection

    connection = project_connection(database_name=alias)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS code_chunks_embedding_hnsw_{DIMENSION}")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    # A project's own role may not CHECKPOINT (pg_checkpoint): the registry's
    # admin connection flushes the server, so the build does not pay for the
    # writes of the store and fill before it.
    from django.db import connection as admin

    with admin.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    started = time.monotonic()
    with PeakRss(pid) as peak:
        embedding_index_ensure(
            alias=alias, dimension=DIMENSION, build_settings=build_settings
        )
    return time.monotonic() - started, peak.peak_kb / 1024


def sizes(*, alias: str) -> dict[str, int]:
    """Return bytes of code_chunks' heap, its TOAST and each of its indexes."""
    from registry.databases import project_connection

    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size('code_chunks'), "
            "coalesce(pg_total_relation_size(nullif(reltoastrelid, 0)), 0) "
            "FROM pg_class WHERE relname = 'code_chunks'"
        )
        heap, toast = cursor.fetchone()
        out = {"table": heap, "toast": toast}
        cursor.execute(
            "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'code_chunks'::regclass ORDER BY i.relname"
        )
        for name, size in cursor.fetchall():
            out[name.replace("code_chunks_", "idx ")] = size
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('search_terms') FROM search_terms"
        )
        out["terms rows"], out["terms bytes"] = cursor.fetchone()
        cursor.execute("SELECT pg_database_size(current_database())")
        out["database"] = cursor.fetchone()[0]
    return out


def timed(call, items) -> list[float]:
    samples = []
    for item in items:
        started = time.perf_counter()
        call(item)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def latencies(*, project, alias: str, queries, given, count: int) -> dict:
    """Return p50/p95 (ms) of the search modes, find_symbol and grep_code."""
    from registry.databases import project_connection
    from search.exceptions import SearchTimedOut
    from search.grep import code_grep
    from search.navigation import symbol_find
    from search.selectors import chunk_search

    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT name FROM code_symbols TABLESAMPLE SYSTEM (5) REPEATABLE (3) "
            "WHERE length(name) > 5 LIMIT %s",
            [count * 4],
        )
        names = [row[0] for row in cursor.fetchall()]
    rng = random.Random(5)
    names = rng.sample(names, min(count, len(names)))
    out = {}
    for mode in ("hybrid", "semantic", "keyword"):
        for query in queries[:20]:  # warm the caches and the plan
            chunk_search(project=project, query=query, mode=mode, embedder=given)
        samples = timed(
            lambda q, m=mode: chunk_search(
                project=project, query=q, mode=m, embedder=given
            ),
            queries,
        )
        out[mode] = samples
        print(
            f"    {mode:<12} n={len(samples):<4} p50 {percentile(samples, 0.5):7.2f} ms"
            f"  p95 {percentile(samples, 0.95):7.2f} ms",
            flush=True,
        )
    out["find_symbol"] = timed(
        lambda n: symbol_find(project=project, name=n, body_lines=0), names
    )
    timeouts = []

    def grep(name: str) -> None:
        # At a million chunks a common name can hit GREP_TIMEOUT_SECONDS:
        # counted at the timeout, and reported, rather than ending the run.
        try:
            code_grep(project=project, pattern=name)
        except SearchTimedOut:
            timeouts.append(name)

    out["grep_code"] = timed(grep, names[: max(20, count // 4)])
    if timeouts:
        print(f"    grep_code: {len(timeouts)} calls hit the statement timeout")
    return {
        key: (percentile(v, 0.5), percentile(v, 0.95), len(v)) for key, v in out.items()
    }


def vector_compare(*, alias: str, vectors: list, build_settings: dict) -> dict:
    """Compare the halfvec HNSW index with one over full-precision vectors.

    Same rows, same queries, same build settings, in one run: build time,
    size, kNN p50/p95 (40 nearest, as chunk_search asks) and recall@10
    against an exact float32 scan of a sample of the queries.
    """
    from django.db import transaction

    from registry.databases import project_connection

    literal = ["[" + ",".join(f"{x:.7g}" for x in v) + "]" for v in vectors]
    connection = project_connection(database_name=alias)
    out: dict = {}
    with connection.cursor() as cursor:
        for name, value in build_settings.items():
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
        started = time.monotonic()
        cursor.execute(
            "CREATE INDEX code_chunks_cmp_vector ON code_chunks USING hnsw "
            f"((embedding::vector({DIMENSION})) vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        out["vector build s"] = time.monotonic() - started
        for name in build_settings:
            cursor.execute(f"RESET {name}")
        cursor.execute(
            "SELECT pg_relation_size('code_chunks_cmp_vector'), "
            f"pg_relation_size('code_chunks_embedding_hnsw_{DIMENSION}')"
        )
        out["vector index MB"], out["halfvec index MB"] = (
            b / 1e6 for b in cursor.fetchone()
        )
    knn = {
        kind: (
            f"SELECT id FROM code_chunks ORDER BY embedding::{kind}({DIMENSION}) "
            f"<=> %s::{kind}({DIMENSION}) LIMIT 40"
        )
        for kind in ("halfvec", "vector")
    }
    found: dict[str, list[list[int]]] = {"halfvec": [], "vector": []}
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = 40")
        for kind, sql in knn.items():
            for q in literal[:20]:
                cursor.execute(sql, [q])
            samples = []
            for q in literal:
                started = time.perf_counter()
                cursor.execute(sql, [q])
                found[kind].append([row[0] for row in cursor.fetchall()][:10])
                samples.append((time.perf_counter() - started) * 1000)
            out[f"{kind} knn"] = (percentile(samples, 0.5), percentile(samples, 0.95))
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        exact = []
        for q in literal[:30]:
            cursor.execute(
                "SELECT id FROM code_chunks ORDER BY embedding::vector <=> %s::vector "
                "LIMIT 10",
                [q],
            )
            exact.append({row[0] for row in cursor.fetchall()})
    for kind in found:
        hits = sum(len(e & set(f)) for e, f in zip(exact, found[kind], strict=False))
        out[f"{kind} recall@10"] = hits / (10 * len(exact))
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX code_chunks_cmp_vector")
    print(
        f"    halfvec vs vector HNSW: build {out['vector build s']:.1f} s (vector; "
        f"halfvec above), size {out['halfvec index MB']:.0f} / "
        f"{out['vector index MB']:.0f} MB, kNN p50/p95 halfvec "
        f"{out['halfvec knn'][0]:.2f}/{out['halfvec knn'][1]:.2f} ms, vector "
        f"{out['vector knn'][0]:.2f}/{out['vector knn'][1]:.2f} ms, recall@10 vs "
        f"exact float32 halfvec {out['halfvec recall@10']:.3f} vector "
        f"{out['vector recall@10']:.3f}",
        flush=True,
    )
    return out


def point_run(*, target: int, pool, per_file: float, args, embedder, queries) -> dict:
    """Store, embed (random), index and measure one project of ~target chunks."""
    from django.conf import settings

    from indexing.models import CodeChunk, EmbeddingSpace
    from indexing.services import repository_index
    from registry.services import project_alias, project_create, project_delete

    project = project_create(name=f"bench-scale-{target}-{uuid.uuid4().hex[:6]}")
    alias = project_alias(project=project)
    root = Path(settings.CODEBASE_MCP_HOME) / "bench-scale" / project.name
    result: dict = {"target": target}
    try:
        files = max(1, round(target / per_file))
        started = time.monotonic()
        size = corpus_write(root=root, pool=pool, files=files, seed=target)
        print(
            f"\n[{target}] wrote {files} files ({size / 1e6:.0f} MB) in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
        EmbeddingSpace.objects.using(alias).create(
            model_id=embedder.model_id, dimension=DIMENSION
        )
        started = time.monotonic()
        summary = repository_index(project=project, repo_path=str(root), embed=False)
        result["store s"] = time.monotonic() - started
        result["chunks"] = CodeChunk.objects.using(alias).count()
        print(
            f"[{target}] stored {result['chunks']} chunks of {summary.files_indexed} "
            f"files in {result['store s']:.1f} s (skipped {summary.skipped_by_reason}); "
            f"bench process peak RSS {peak_rss_mb():.0f} MB",
            flush=True,
        )
        if args.store_only:
            return result
        started = time.monotonic()
        if args.real_vectors and target <= 100_000:
            from indexing.services import chunks_embed

            chunks_embed(alias=alias, embedder=embedder, dimension=DIMENSION)
            result["vectors"] = "real"
            rate = result["chunks"] / (time.monotonic() - started)
            print(f"[{target}] embedded by the real model: {rate:.0f} chunks/s")
        else:
            vectors_fill(alias=alias)
            result["vectors"] = "random"
        result["fill s"] = time.monotonic() - started
        if args.build_compare:
            seconds, peak = index_build(alias=alias, build_settings={})
            result["hnsw default s"], result["hnsw default MB"] = seconds, peak
            print(
                f"[{target}] HNSW build, server defaults: {seconds:.1f} s, "
                f"peak RSS {peak:.0f} MB",
                flush=True,
            )
        seconds, peak = index_build(alias=alias, build_settings=None)
        result["hnsw s"], result["hnsw MB"] = seconds, peak
        print(
            f"[{target}] {result['vectors']} vectors in {result['fill s']:.1f} s; "
            "HNSW build "
            f"(HNSW_BUILD_*): {seconds:.1f} s, peak RSS {peak:.0f} MB",
            flush=True,
        )
        from registry.databases import project_connection

        with project_connection(database_name=alias).cursor() as cursor:
            cursor.execute("VACUUM ANALYZE code_chunks")
        result["sizes"] = sizes(alias=alias)
        vectors = {q: embedder.embed_query(q) for q in queries}
        result["latency"] = latencies(
            project=project,
            alias=alias,
            queries=queries,
            given=FixedVector(embedder, vectors),
            count=args.queries,
        )
        point_print(result)
        if args.compare_vector and target <= 100_000:
            from indexing.services import hnsw_build_settings

            result["vector"] = vector_compare(
                alias=alias,
                vectors=[vectors[q] for q in queries],
                build_settings=hnsw_build_settings(),
            )
    finally:
        if not args.keep:
            project_delete(project=project)
            shutil.rmtree(root, ignore_errors=True)
    return result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def point_print(result: dict) -> None:
    chunks = result["chunks"]
    print(f"[{result['target']}] disk per chunk (bytes):")
    for name, size in result["sizes"].items():
        if name in ("terms rows", "terms bytes", "database"):
            continue
        print(f"    {name:<28} {size / chunks:8.0f}")
    s = result["sizes"]
    print(
        f"    database total {s['database'] / chunks:8.0f} B/chunk; BM25 terms: "
        f"{s['terms rows']} rows, {s['terms bytes'] / 1e6:.1f} MB"
    )
    for key, (p50, p95, n) in result["latency"].items():
        print(f"    {key:<12} n={n:<4} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")


async def mcp_latencies(
    *, project_name: str, queries: list[str], names: list[str]
) -> dict[str, tuple[float, float, int]]:
    """Return p50/p95 (ms) of search_code and find_symbol through stdio runmcp.

    A real client's view: the MCP SDK client, JSON over a pipe, the server
    embedding each query with the real model.
    """
    import sys

    from django.db import connections
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = dict(os.environ)
    env["REGISTRY_DATABASE_NAME"] = connections["default"].settings_dict["NAME"]
    manage = Path(__file__).resolve().parent.parent / "manage.py"
    params = StdioServerParameters(
        command=sys.executable, args=[str(manage), "runmcp"], env=env
    )
    calls = {
        "mcp hybrid": ("search_code", [{"query": q} for q in queries]),
        "mcp keyword": (
            "search_code",
            [{"query": q, "mode": "keyword"} for q in queries],
        ),
        "mcp find_symbol": ("find_symbol", [{"name": n} for n in names]),
    }
    out: dict[str, tuple[float, float, int]] = {}
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for label, (tool, arguments) in calls.items():
                    for given in arguments[:10]:  # warm the model and the pool
                        await session.call_tool(
                            tool, {**given, "project_id": project_name}
                        )
                    samples = []
                    for given in arguments:
                        started = time.perf_counter()
                        result = await session.call_tool(
                            tool, {**given, "project_id": project_name}
                        )
                        samples.append((time.perf_counter() - started) * 1000)
                        assert not result.is_error, result.content
                    out[label] = (
                        percentile(samples, 0.5),
                        percentile(samples, 0.95),
                        len(samples),
                    )
                    print(
                        f"    {label:<16} n={len(samples):<4} p50 {out[label][0]:7.2f}"
                        f" ms  p95 {out[label][1]:7.2f} ms",
                        flush=True,
                    )
    return out


def measure_kept(*, name: str, embedder, queries: list[str], count: int) -> None:
    """Measure a project kept by an earlier --keep run again: latencies only."""
    import asyncio

    from registry.databases import project_connection
    from registry.selectors import project_find
    from registry.services import project_alias

    project = project_find(reference=name)
    if project is None:
        raise SystemExit(f"no project {name!r}; list them with manage.py projects")
    alias = project_alias(project=project)
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT count(*) FROM code_chunks")
        chunks = cursor.fetchone()[0]
    print(f"\n[{name}] {chunks} chunks; in-process:", flush=True)
    vectors = {q: embedder.embed_query(q) for q in queries}
    found = latencies(
        project=project,
        alias=alias,
        queries=queries,
        given=FixedVector(embedder, vectors),
        count=count,
    )
    for key, (p50, p95, n) in found.items():
        print(f"    {key:<12} n={n:<4} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT name FROM code_symbols TABLESAMPLE SYSTEM (5) REPEATABLE (3) "
            "WHERE length(name) > 5 LIMIT %s",
            [count],
        )
        names = [row[0] for row in cursor.fetchall()]
    print(f"[{name}] through stdio runmcp (query embedded by the server):")
    asyncio.run(mcp_latencies(project_name=project.name, queries=queries, names=names))


def growth_table(results: list[dict]) -> None:
    """Print each cost at every point and its exponent from first to last."""
    rows: list[tuple[str, list[float]]] = [
        ("store s", [r["store s"] for r in results]),
        ("HNSW build s", [r["hnsw s"] for r in results]),
        ("HNSW build peak RSS MB", [r["hnsw MB"] for r in results]),
        ("BM25 term rows", [r["sizes"]["terms rows"] for r in results]),
        ("BM25 terms MB", [r["sizes"]["terms bytes"] / 1e6 for r in results]),
        ("database MB", [r["sizes"]["database"] / 1e6 for r in results]),
        (
            "table+TOAST B/chunk",
            [
                (r["sizes"]["table"] + r["sizes"]["toast"]) / r["chunks"]
                for r in results
            ],
        ),
        (
            "HNSW index B/chunk",
            [
                r["sizes"].get(f"idx embedding_hnsw_{DIMENSION}", 0) / r["chunks"]
                for r in results
            ],
        ),
        (
            "search GIN B/chunk",
            [r["sizes"].get("idx search_gin", 0) / r["chunks"] for r in results],
        ),
    ]
    if "hnsw default s" in results[0]:
        rows.insert(
            2, ("HNSW build s, defaults", [r["hnsw default s"] for r in results])
        )
    for key in ("hybrid", "semantic", "keyword", "find_symbol", "grep_code"):
        rows.append((f"{key} p50 ms", [r["latency"][key][0] for r in results]))
        rows.append((f"{key} p95 ms", [r["latency"][key][1] for r in results]))
    chunks = [r["chunks"] for r in results]
    header = " | ".join(f"{c:>10,}" for c in chunks)
    print(f"\n| cost | {header} | exponent |")
    print("|---|" + "---:|" * (len(chunks) + 1))
    for label, values in rows:
        cells = " | ".join(
            f"{v:>10,.1f}" if v < 1e4 else f"{v:>10,.0f}" for v in values
        )
        exponent = (
            math.log(values[-1] / values[0]) / math.log(chunks[-1] / chunks[0])
            if values[0] > 0 and values[-1] > 0 and len(values) > 1
            else float("nan")
        )
        print(f"| {label} | {cells} | {exponent:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="10000,100000")
    parser.add_argument("--full", action="store_true", help="add the 1M point")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--build-compare",
        action="store_true",
        help="also build HNSW with the server's default settings",
    )
    parser.add_argument(
        "--compare-vector",
        action="store_true",
        help="up to 100k chunks, also time an HNSW index over full-precision vectors",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--real-vectors",
        action="store_true",
        help="up to 100k chunks, embed with the real model instead of random "
        "vectors (100k: about 11 minutes on 2 cores)",
    )
    parser.add_argument(
        "--store-only",
        action="store_true",
        help="stop each point after the store (keyword-searchable) and its timing",
    )
    parser.add_argument(
        "--measure",
        metavar="PROJECT",
        action="append",
        help="only measure latencies (in-process and through runmcp) of a project "
        "an earlier --keep run left; may be given more than once",
    )
    args = parser.parse_args()
    points = sorted(int(v) for v in args.points.split(","))
    if args.full and 1_000_000 not in points:
        points.append(1_000_000)
    django_setup()
    from django.conf import settings
    from django.core.management import call_command

    from indexing.embedders import embedder_get
    from indexing.services import hnsw_build_settings

    call_command("migrate", verbosity=0)
    print(machine_description())
    from django.db import connection as registry

    with registry.cursor() as cursor:
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
        cursor.execute("SHOW effective_cache_size")
        cache = cursor.fetchone()[0]
    print(
        f"server: shared_buffers {buffers}, effective_cache_size {cache}; "
        f"HNSW build settings: {hnsw_build_settings()}; "
        f"SEARCH_KEYWORD_SCAN_LIMIT={settings.SEARCH_KEYWORD_SCAN_LIMIT}"
    )
    if args.measure:
        embedder = embedder_get()
        queries = queries_make(args.queries, seed=11)
        for name in args.measure:
            measure_kept(
                name=name, embedder=embedder, queries=queries, count=args.queries
            )
        return
    pool = pool_files()
    per_file = chunks_per_file(pool=pool)
    print(f"corpus pool: {len(pool)} site-packages files, ~{per_file:.1f} chunks each")
    embedder = embedder_get()
    queries = queries_make(args.queries, seed=11)
    results = [
        point_run(
            target=t,
            pool=pool,
            per_file=per_file,
            args=args,
            embedder=embedder,
            queries=queries,
        )
        for t in points
    ]
    if not args.store_only:
        growth_table(results)


if __name__ == "__main__":
    main()
