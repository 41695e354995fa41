"""Time registry lookups and per-project alias/pool creation.

Run: .venv/bin/python bench/registry_bench.py [--repetitions 1000]
Uses the embedded server of CODEBASE_MCP_HOME; creates one throw-away project
and drops it at the end.
"""

import argparse
import statistics
import time
import uuid

from machine import django_setup, machine_description, percentile


def timed(repetitions: int, function) -> list[float]:
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(label: str, samples: list[float], target: str) -> None:
    print(
        f"{label:<38} n={len(samples):<5} mean {statistics.mean(samples):7.3f} ms  "
        f"p50 {percentile(samples, 0.5):7.3f} ms  p95 {percentile(samples, 0.95):7.3f} ms"
        f"  (seed target {target})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=1000)
    args = parser.parse_args()
    django_setup()
    from django.core.management import call_command
    from django.db import connections

    from registry.databases import (
        project_database_register,
        project_database_unregister,
    )
    from registry.selectors import project_get
    from registry.services import project_create, project_delete

    call_command("migrate", verbosity=0)
    project = project_create(name=f"bench-registry-{uuid.uuid4().hex[:6]}")
    try:
        n = args.repetitions
        print(machine_description())
        report(
            "registry lookup by name",
            timed(n, lambda: project_get(reference=project.name)),
            "< 10 ms",
        )
        report(
            "registry lookup by id",
            timed(n, lambda: project_get(reference=str(project.id))),
            "< 10 ms",
        )

        name = project.database_name

        def fresh_alias() -> None:
            project_database_unregister(database_name=name)
            project_database_register(database_name=name)

        report("alias registration (no connection)", timed(n, fresh_alias), "< 100 ms")

        def first_query() -> None:
            project_database_unregister(database_name=name)
            alias = project_database_register(database_name=name)
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
            connections[alias].close()

        report("pool creation + first query", timed(n, first_query), "< 100 ms")

        def pooled_query() -> None:
            with connections[name].cursor() as cursor:
                cursor.execute("SELECT 1")
            connections[name].close()

        report("query on an existing pool (session)", timed(n, pooled_query), "< 5 ms")
    finally:
        project_delete(project=project)


if __name__ == "__main__":
    main()
