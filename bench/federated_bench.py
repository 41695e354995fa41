"""Time a search over 1, 3 and 10 projects: p50/p95, and a cold pool's first query.

Run: cd /work/main && CODEBASE_MCP_HOME=/tmp/cbbench .venv/bin/python \
         bench/federated_bench.py [--rounds 3] [--mode hybrid] [--keep]

Ten real packages installed in this virtualenv are copied and indexed, one
project each (kept with --keep and reused on the next run: unchanged files are
not indexed again). Every query is asked of one project (`chunk_search`, the
baseline; the projects take turns), then through `chunk_search_federated` of
1, 3 (taking turns too) and all 10 projects. Query embedding is included in
every figure, once per call, as a client sees it. The goal: 10 projects' p95 under
2 x one project's p95.

Then the cost of a cold start: each project's pool is closed
(project_database_unregister) and the first federated query over all ten
pays for ten pool creations and first connections. ROLES marks where the
per-project PostgreSQL roles (issue 18, part A) change that cost: with roles,
each pool connects as its project's role; run once with and once without.
"""

from __future__ import annotations

import argparse
import shutil
import site
import statistics
import time
from pathlib import Path

from machine import django_setup, machine_description, percentile

PACKAGES = (
    "requests",
    "environ",
    "asgiref",
    "sqlparse",
    "psycopg_pool",
    "h11",
    "dotenv",
    "markupsafe",
    "charset_normalizer",
    "ninja",
)
QUERIES = (
    "read a database URL from an environment variable",
    "run a synchronous function from async code in a thread",
    "split SQL text into statements",
    "parse a boolean value from a string",
    "retry a request after a connection error",
    "return a connection to the pool when done",
    "parse an HTTP header line into name and value",
    "escape HTML special characters in a string",
    "detect the character encoding of bytes",
    "register a route with a path and a method",
    "load variables from a .env file",
    "close idle connections after a timeout",
    "build the query string of a URL",
    "format a SQL statement with indentation",
    "validate the request body against a schema",
    "read a chunked transfer encoding body",
    "cookie jar that stores cookies between requests",
    "wait until a worker thread has finished",
    "convert a string to bytes with an encoding",
    "raise an error when the status code is not 2xx",
)
# Per-project roles (issue 18 part A): the coordinator sets how pools connect.
ROLES = "not measured here: per-project roles land with part A (see --roles)"


class OnceEmbedded:
    """The configured embedder, with one query's vector made once."""

    def __init__(self, inner, query: str) -> None:
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.vector = inner.embed_query(query)

    def embed_query(self, text: str):
        return self.vector


def corpus_copy(*, target: Path) -> dict[str, Path]:
    """Copy each package's Python files to target/NAME; return name -> path."""
    source_root = Path(site.getsitepackages()[0])
    copies = {}
    for name in PACKAGES:
        destination = target / name
        if not destination.exists():
            shutil.copytree(
                source_root / name,
                destination,
                ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyi"),
            )
        copies[name] = destination
    return copies


def summary(label: str, values: list[float], base: float | None = None) -> str:
    p95 = percentile(values, 0.95)
    ratio = f"  p95 x {p95 / base:.2f} of one project" if base else ""
    return (
        f"  {label:<34} n={len(values):<4} p50 {percentile(values, 0.5):7.1f} ms  "
        f"p95 {p95:7.1f} ms  mean {statistics.mean(values):7.1f} ms{ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over QUERIES")
    parser.add_argument(
        "--mode", default="hybrid", choices=("hybrid", "semantic", "keyword")
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the ten projects for the next run"
    )
    parser.add_argument(
        "--roles",
        action="store_true",
        help="label the cold-start figures as measured with per-project roles "
        "(part A must be in place; this script does not switch them)",
    )
    args = parser.parse_args()

    django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from quality_rank import project_index_configured

    from indexing.embedders import embedder_get
    from registry.databases import project_database_unregister
    from registry.selectors import project_find
    from registry.services import project_create, project_delete
    from search.federation import chunk_search_federated
    from search.selectors import chunk_search

    call_command("migrate", verbosity=0)
    print(machine_description())
    print(
        "note: the machine is shared with other work; compare the rows of one "
        "run (ratios), not absolute figures across runs."
    )
    workdir = Path(settings.CODEBASE_MCP_HOME) / "bench-federated"
    copies = corpus_copy(target=workdir / "corpus")
    projects = []
    created = []
    for name, path in copies.items():
        project_name = f"fedbench-{name}"
        project = project_find(reference=project_name)
        if project is None:
            project = project_create(name=project_name)
            created.append(project)
        started = time.monotonic()
        indexed = project_index_configured(project=project, root=path)
        print(
            f"index {name:<20} {indexed.chunks_total:>5} chunks "
            f"({indexed.files_indexed} files indexed) in "
            f"{time.monotonic() - started:.1f} s"
        )
        projects.append(project)
    try:
        count = len(projects)
        # Warm every pool and the model first: the figures below are warm.
        chunk_search_federated(projects=projects, query="warm up", mode=args.mode)
        timings: dict[str, list[float]] = {
            "one project (chunk_search)": [],
            "1 project (federated)": [],
            "3 projects (federated)": [],
            f"{count} projects (federated)": [],
            f"{count} projects one after another": [],
        }
        failures = 0
        turn = 0
        for _ in range(args.rounds):
            for query in QUERIES:
                one = projects[turn % count]
                three = [projects[(turn + k) % count] for k in range(3)]
                turn += 1
                started = time.perf_counter()
                chunk_search(project=one, query=query, mode=args.mode)
                timings["one project (chunk_search)"].append(
                    (time.perf_counter() - started) * 1000
                )
                for label, chosen in (
                    ("1 project (federated)", [one]),
                    ("3 projects (federated)", three),
                    (f"{count} projects (federated)", projects),
                ):
                    started = time.perf_counter()
                    found = chunk_search_federated(
                        projects=chosen, query=query, mode=args.mode
                    )
                    timings[label].append((time.perf_counter() - started) * 1000)
                    failures += sum(p.status != "ok" for p in found.projects)
                # What the ten cost without threads: the bound on two cores
                # is about half of it.
                started = time.perf_counter()
                once = OnceEmbedded(embedder_get(), query)
                for project in projects:
                    chunk_search(
                        project=project, query=query, mode=args.mode, embedder=once
                    )
                timings[f"{count} projects one after another"].append(
                    (time.perf_counter() - started) * 1000
                )
        print(
            f"\nwarm {args.mode} search, limit 10, {len(QUERIES)} queries x "
            f"{args.rounds} rounds, query embedding included "
            f"(project answers missing: {failures}):"
        )
        base = percentile(timings["one project (chunk_search)"], 0.95)
        for label, values in timings.items():
            print(summary(label, values, base))
        ten = percentile(timings[f"{count} projects (federated)"], 0.95)
        verdict = "PASS" if ten < 2 * base else "MISSED"
        print(
            f"goal: {count} projects p95 {ten:.1f} ms < 2 x one project's p95 "
            f"{base:.1f} ms = {2 * base:.1f} ms -> {verdict} (x {ten / base:.2f})"
        )

        print(f"\ncold start ({'with per-project roles' if args.roles else ROLES}):")
        cold = []
        for _ in range(3):
            for project in projects:
                project_database_unregister(database_name=project.database_name)
            started = time.perf_counter()
            chunk_search_federated(projects=projects, query=QUERIES[0], mode=args.mode)
            cold.append((time.perf_counter() - started) * 1000)
        print(
            f"  first query over {count} projects after closing their pools: "
            f"{', '.join(f'{value:.0f}' for value in cold)} ms "
            f"(warm p50 {percentile(timings[f'{count} projects (federated)'], 0.5):.0f}"
            " ms)"
        )
        firsts = []
        for project in projects:
            project_database_unregister(database_name=project.database_name)
            started = time.perf_counter()
            chunk_search(project=project, query=QUERIES[1], mode=args.mode)
            firsts.append((time.perf_counter() - started) * 1000)
        print(
            f"  one project's first query on a new pool: p50 "
            f"{percentile(firsts, 0.5):.1f} ms, max {max(firsts):.1f} ms"
        )
    finally:
        if not args.keep:
            for project in created:
                project_delete(project=project)
            if not created:
                print("(projects existed before this run; kept)")


if __name__ == "__main__":
    main()
