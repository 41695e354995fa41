"""Measure the seed's resolution table: config discovery, lookups, pools, sessions.

Run: .venv/bin/python bench/resolution_bench.py [--repetitions 1000]

Config discovery walks a 20-level directory tree whose config sits at the top.
"Uncached" clears the parsed-config cache before every call (so the file is
read and parsed again); "cached" reuses it (stat calls only).
"""

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from machine import django_setup, machine_description, percentile

SEED_TARGETS = {
    "config discovery (cached)": 1.0,
    "config discovery (uncached)": 60.0,
    "registry lookup": 10.0,
    "project pool creation": 100.0,
    "session creation": 5.0,
}


def timed(repetitions: int, function, before=None) -> list[float]:
    samples = []
    for _ in range(repetitions):
        if before:
            before()
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=1000)
    args = parser.parse_args()
    django_setup()
    from django.core.management import call_command
    from django.db import connections

    from mcp_bridge import resolution
    from registry.databases import (
        project_database_register,
        project_database_unregister,
    )
    from registry.selectors import project_get
    from registry.services import project_create, project_delete

    call_command("migrate", verbosity=0)
    n = args.repetitions
    project = project_create(name=f"bench-resolution-{uuid.uuid4().hex[:6]}")
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as top:
        config_dir = Path(top) / ".codebase-mcp"
        config_dir.mkdir()
        (config_dir / "config.json").write_text(
            json.dumps({"version": "1.0", "project": {"name": project.name}})
        )
        deep = Path(top).joinpath(*[f"level{i}" for i in range(19)])
        deep.mkdir(parents=True)

        def discover() -> None:
            path = resolution.session_config_find(directory=deep)
            resolution.session_config_load(path=path)

        rows.append(("config discovery (cached)", timed(n, discover)))
        rows.append(
            (
                "config discovery (uncached)",
                timed(n, discover, before=resolution._config_cache.clear),
            )
        )
        rows.append(
            ("registry lookup", timed(n, lambda: project_get(reference=project.name)))
        )
        name = project.database_name

        def pool_creation() -> None:
            alias = project_database_register(database_name=name)
            connections[alias].ensure_connection()
            connections[alias].close()

        rows.append(
            (
                "project pool creation",
                timed(
                    n,
                    pool_creation,
                    before=lambda: project_database_unregister(database_name=name),
                ),
            )
        )

        def session() -> None:
            resolved = resolution.project_resolve(working_directory=str(deep))
            with connections[resolved.project.database_name].cursor() as cursor:
                cursor.execute("SELECT 1")
            connections[resolved.project.database_name].close()

        rows.append(("session creation", timed(n, session)))

    try:
        print(machine_description())
        print(
            f"{'operation':<30} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}  seed target"
        )
        for label, samples in rows:
            print(
                f"{label:<30} {percentile(samples, 0.5):9.3f} "
                f"{percentile(samples, 0.95):9.3f} {statistics.mean(samples):9.3f}"
                f"  < {SEED_TARGETS[label]:g} ms"
            )
        print(
            "session creation = resolve the project from a 20-level config + check out a "
            "pooled connection + SELECT 1"
        )
    finally:
        project_delete(project=project)


if __name__ == "__main__":
    main()
