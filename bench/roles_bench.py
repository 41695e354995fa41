"""What a project's own login role costs: provisioning, pool creation and first query.

Run: CODEBASE_MCP_HOME=/tmp/bench-roles .venv/bin/python bench/roles_bench.py [--repetitions 20]

Provisioning: create + migrate a project database with its role (CREATE ROLE,
grants, extensions by the admin, migrations as the role) against the same
without a role (the admin owns everything), alternating, then dropped.
Connecting: register the alias of one database, open its pool and run the
first query, as the project's role and as the admin, alternating. Figures
are noisy on a shared machine: compare the two columns of one run.
"""

import argparse
import statistics
import time
import uuid

from machine import django_setup, machine_description, percentile


def summary(samples: list[float]) -> str:
    return (
        f"mean {statistics.mean(samples):8.1f} ms  p50 {percentile(samples, 0.5):8.1f} ms"
        f"  p95 {percentile(samples, 0.95):8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--provisions", type=int, default=5)
    args = parser.parse_args()
    django_setup()
    from django.core.management import call_command

    from registry.databases import (
        database_name_build,
        project_connection,
        project_database_create,
        project_database_drop,
        project_database_register,
        project_database_unregister,
        project_login_forget,
        project_login_new,
    )

    call_command("migrate", verbosity=0)
    print(machine_description())

    provision = {"with role": [], "admin only": []}
    for _ in range(args.provisions):
        for variant in provision:
            name = database_name_build(name="bench-roles", project_id=uuid.uuid4())
            login = (
                project_login_new(database_name=name)
                if variant == "with role"
                else None
            )
            started = time.perf_counter()
            project_database_create(database_name=name, login=login)
            provision[variant].append((time.perf_counter() - started) * 1000)
            project_database_drop(database_name=name)
    for variant, samples in provision.items():
        print(f"create + migrate, {variant:<10} n={len(samples):<3} {summary(samples)}")

    name = database_name_build(name="bench-roles-pool", project_id=uuid.uuid4())
    login = project_login_new(database_name=name)
    project_database_create(database_name=name, login=login)
    first_query = {"as the role": [], "as admin": []}
    try:
        for _ in range(args.repetitions):
            for variant in first_query:
                project_login_forget(database_name=name)
                started = time.perf_counter()
                project_database_register(
                    database_name=name,
                    login=login if variant == "as the role" else None,
                )
                with project_connection(database_name=name).cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM code_chunks")
                    cursor.fetchone()
                first_query[variant].append((time.perf_counter() - started) * 1000)
                project_database_unregister(database_name=name)
        for variant, samples in first_query.items():
            print(
                f"pool + first query, {variant:<11} n={len(samples):<3} {summary(samples)}"
            )
        ratio = statistics.median(first_query["as the role"]) / statistics.median(
            first_query["as admin"]
        )
        print(f"first query p50 ratio role/admin: {ratio:.2f}")
    finally:
        project_login_forget(database_name=name)
        project_database_drop(database_name=name)


if __name__ == "__main__":
    main()
