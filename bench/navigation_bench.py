"""Time find_symbol, find_references and file_outline; measure what symbols cost.

Run: CODEBASE_MCP_HOME=/tmp/bench .venv/bin/python bench/navigation_bench.py
     [--large PATH] [--queries N] [--skip-large] [--skip-mcp]
(add CODEBASE_MCP_ALLOWED_ROOTS=/ when the virtualenv lies outside the checkout,
as the corpora are read from it)

Corpora: Django's source tree (from the virtualenv), and a large project
(default: the virtualenv's site-packages, about 10k files / 100k+ chunks),
each indexed keyword-only into a throw-away project. For each: p50/p95 of
find_symbol (exact, prefix, fuzzy), find_references and file_outline in
process, with names and files drawn by a seeded random choice from the
index. For Django also: the store phase with and without symbols and
references (the same code path, analysis switched off), the disk the symbol
tables take, and find_symbol / find_references through a real `runmcp`
stdio process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from functools import partial
from pathlib import Path

from machine import ROOT, django_setup, machine_description

SEED = 7


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(label: str, values: list[float]) -> str:
    return (
        f"  {label:<28} n={len(values):<4} p50 {statistics.median(values):6.2f} ms  "
        f"p95 {pct(values, 0.95):6.2f} ms"
    )


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def index(project, path: str, *, symbols: bool = True) -> float:
    from django.test import override_settings

    import indexing.parsing as parsing
    import indexing.services as services

    original = parsing.file_analyse
    run_settings = {}
    if not symbols:
        # Worker processes import their own parser: parse in this process.
        parsing.file_analyse = partial(original, with_symbols=False)
        run_settings["INDEX_PARSE_WORKERS"] = 0
    try:
        started = time.perf_counter()
        with override_settings(**run_settings):
            summary = services.repository_index(
                project=project, repo_path=path, embed=False
            )
        seconds = time.perf_counter() - started
    finally:
        parsing.file_analyse = original
    print(
        f"  indexed {summary.files_indexed} files, {summary.chunks_total} chunks in "
        f"{seconds:.1f} s ({'with' if symbols else 'without'} symbols and references)"
    )
    return seconds


def table_sizes(alias: str) -> dict[str, int]:
    from registry.databases import project_connection

    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables"
        )
        sizes = dict(cursor.fetchall())
        cursor.execute("SELECT pg_database_size(current_database())")
        sizes["(database)"] = cursor.fetchone()[0]
    return sizes


def samples(alias: str, queries: int) -> tuple[list[str], list[str], list[str]]:
    from indexing.models import CodeSymbol

    rng = random.Random(SEED)
    names = sorted(set(CodeSymbol.objects.using(alias).values_list("name", flat=True)))
    files = sorted(
        set(CodeSymbol.objects.using(alias).values_list("relative_path", flat=True))
    )
    drawn = [rng.choice(names) for _ in range(queries)]
    # Misspell by swapping two inner letters: what fuzzy is for.
    fuzzy = []
    for name in drawn:
        if len(name) > 4:
            i = rng.randrange(1, len(name) - 2)
            name = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        fuzzy.append(name)
    return drawn, fuzzy, [rng.choice(files) for _ in range(queries)]


def latencies(project, alias: str, queries: int) -> None:
    from search.navigation import file_outline, reference_find, symbol_find

    names, misspelt, files = samples(alias, queries)
    prefixes = [name[: max(3, len(name) // 2)] for name in names]
    for warm in names[:20]:
        symbol_find(project=project, name=warm)
    runs = {
        "find_symbol exact": [
            timed(lambda n=n: symbol_find(project=project, name=n)) for n in names
        ],
        "find_symbol prefix": [
            timed(lambda n=n: symbol_find(project=project, name=n, match="prefix"))
            for n in prefixes
        ],
        "find_symbol fuzzy": [
            timed(lambda n=n: symbol_find(project=project, name=n, match="fuzzy"))
            for n in misspelt
        ],
        "find_symbol exact, no body": [
            timed(lambda n=n: symbol_find(project=project, name=n, body_lines=0))
            for n in names
        ],
        "find_references": [
            timed(lambda n=n: reference_find(project=project, name=n)) for n in names
        ],
        "file_outline": [
            timed(lambda f=f: file_outline(project=project, path=f)) for f in files
        ],
    }
    for label, values in runs.items():
        print(line(label, values))


async def mcp_latencies(project_name: str, names: list[str]) -> dict[str, list[float]]:
    from django.db import connections
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = dict(os.environ)
    env["REGISTRY_DATABASE_NAME"] = connections["default"].settings_dict["NAME"]
    params = StdioServerParameters(
        command=sys.executable, args=[str(ROOT / "manage.py"), "runmcp"], env=env
    )
    out: dict[str, list[float]] = {"find_symbol": [], "find_references": []}
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for tool in out:
                    for name in names[:10]:
                        await session.call_tool(
                            tool, {"name": name, "project_id": project_name}
                        )
                    for name in names:
                        started = time.perf_counter()
                        result = await session.call_tool(
                            tool, {"name": name, "project_id": project_name}
                        )
                        out[tool].append((time.perf_counter() - started) * 1000)
                        assert not result.is_error, result.content
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", help="Large corpus (default: site-packages).")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-mcp", action="store_true")
    args = parser.parse_args()
    django_setup()
    import django as django_package
    from django.core.management import call_command

    from registry.services import project_alias, project_create, project_delete

    call_command("migrate", verbosity=0)
    print(machine_description())
    django_path = str(Path(django_package.__file__).resolve().parent)
    made = []
    try:
        print(f"corpus: Django {django_package.__version__} at {django_path}")
        plain = project_create(name=f"bench-nav-plain-{uuid.uuid4().hex[:6]}")
        made.append(plain)
        without = index(plain, django_path, symbols=False)
        project = project_create(name=f"bench-nav-{uuid.uuid4().hex[:6]}")
        made.append(project)
        with_symbols = index(project, django_path)
        print(
            f"  store phase: {without:.1f} s without, {with_symbols:.1f} s with symbols "
            f"and references (+{(with_symbols / without - 1) * 100:.0f} %)"
        )
        alias = project_alias(project=project)
        sizes = table_sizes(alias)
        plain_size = table_sizes(project_alias(project=plain))["(database)"]
        symbol_bytes = sizes.get("code_symbols", 0) + sizes.get("code_references", 0)
        from indexing.models import CodeReference, CodeSymbol

        print(
            f"  disk: code_symbols {sizes.get('code_symbols', 0) / 2**20:.1f} MiB "
            f"({CodeSymbol.objects.using(alias).count()} rows), code_references "
            f"{sizes.get('code_references', 0) / 2**20:.1f} MiB "
            f"({CodeReference.objects.using(alias).count()} rows), tables and "
            f"indexes; database {sizes['(database)'] / 2**20:.1f} MiB with vs "
            f"{plain_size / 2**20:.1f} MiB without "
            f"(+{(sizes['(database)'] / plain_size - 1) * 100:.0f} %; symbol tables "
            f"{symbol_bytes / 2**20:.1f} MiB)"
        )
        latencies(project, alias, args.queries)
        if not args.skip_large:
            large = args.large or str(
                Path(django_package.__file__).resolve().parents[1]
            )
            print(f"corpus: {large}")
            big = project_create(name=f"bench-nav-large-{uuid.uuid4().hex[:6]}")
            made.append(big)
            index(big, large)
            latencies(big, project_alias(project=big), args.queries)
        if not args.skip_mcp:
            # Last: the SDK ends the server's whole process group on exit.
            names, _, _ = samples(alias, min(args.queries, 100))
            through = asyncio.run(mcp_latencies(project.name, names))
            for tool, values in through.items():
                print(line(f"{tool} through runmcp (Django)", values))
    finally:
        for each in made:
            project_delete(project=each)


if __name__ == "__main__":
    main()
