"""`manage.py projectstats [PROJECT ...]`: size, content and search activity."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.template.defaultfilters import filesizeformat

from operations.metrics import project_metrics
from registry.exceptions import RegistryError
from registry.selectors import project_get, project_list

COLUMNS = (
    "project",
    "server",
    "size",
    "repos",
    "files",
    "chunks",
    "embedded",
    "queries",
    "p50 ms",
    "p95 ms",
    "last indexed",
    "changed",
    "watched",
)


class Command(BaseCommand):
    help = (
        "Show each project's size on disk, repositories, files, chunks, embedded "
        "fraction, searches served and search latency (p50/p95)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "projects", nargs="*", help="Project names or ids (default: every project)."
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print a JSON list with every metric, per-table statistics included.",
        )

    def handle(self, *args, **options):
        try:
            projects = (
                [project_get(reference=ref) for ref in options["projects"]]
                if options["projects"]
                else project_list()
            )
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        results = []
        for project in projects:
            try:
                results.append(project_metrics(project=project).as_dict())
            except (RegistryError, DatabaseError) as exc:
                # One unreachable project must not hide the others.
                results.append(
                    {"name": project.name, "server": project.server, "error": str(exc)}
                )
        if options["json"]:
            self.stdout.write(json.dumps(results))
            return
        if not results:
            self.stdout.write(
                "No projects yet: create one with `manage.py createproject NAME`."
            )
            return
        rows = [COLUMNS, *(_row(result) for result in results)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            )
        for result in results:
            if "error" in result:
                self.stderr.write(
                    self.style.WARNING(f"{result['name']}: {result['error']}")
                )


def _row(result: dict) -> tuple[str, ...]:
    if "error" in result:
        return (result["name"], result["server"], *["?"] * (len(COLUMNS) - 2))

    def number(value) -> str:
        return "-" if value is None else f"{value:g}"

    return (
        result["name"],
        result["server"],
        filesizeformat(result["size_bytes"]).replace("\xa0", " "),
        str(result["repositories"]),
        str(result["files"]),
        str(result["chunks"]),
        f"{result['embedded_fraction']:.0%}",
        str(result["queries_served"]),
        number(result["search_latency_p50_ms"]),
        number(result["search_latency_p95_ms"]),
        (result["last_indexed_at"] or "never")[:19].replace("T", " "),
        str(result["files_changed"]),
        f"{result['repositories_watched']}/{result['repositories']}",
    )
