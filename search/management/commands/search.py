"""`manage.py search "QUERY"`: search a project from the terminal."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from search.exceptions import SearchError
from search.federation import chunk_search_federated
from search.management.commands.symbols import (
    PROJECTS_HELP,
    label,
    project_of,
    projects_of,
)
from search.selectors import MAX_LIMIT, MODES, chunk_search


class Command(BaseCommand):
    help = "Search a project's code: file:lines, score and the first lines of each hit."

    def add_arguments(self, parser):
        parser.add_argument("query", help="What to look for, in words or identifiers.")
        parser.add_argument("--project", action="append", help=PROJECTS_HELP)
        parser.add_argument(
            "--mode", choices=MODES, default="hybrid", help="Ranking mode."
        )
        parser.add_argument(
            "--limit", type=int, default=10, help=f"Results to show (1-{MAX_LIMIT})."
        )
        parser.add_argument("--repository", help="Only this repository (id or path).")
        parser.add_argument("--language", help="Only this language, e.g. python.")
        parser.add_argument(
            "--file-type", help="Only files with this extension, e.g. py."
        )
        parser.add_argument("--directory", help="Only under this directory (relative).")
        parser.add_argument(
            "--path-glob", help="Only paths matching a glob, e.g. '**/*.ts'."
        )
        parser.add_argument(
            "--lines",
            type=int,
            default=6,
            help="Code lines to show per hit (text output).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the full response as JSON."
        )

    def handle(self, *args, **options):
        try:
            arguments = {
                "query": options["query"],
                "mode": options["mode"],
                "limit": options["limit"],
                "repository": options["repository"],
                "language": options["language"],
                "file_type": options["file_type"],
                "directory": options["directory"],
                "path_glob": options["path_glob"],
            }
            many = projects_of(options)
            if many is not None:
                response = chunk_search_federated(projects=many, **arguments)
                shown = {}
            else:
                project = project_of(options)
                response = chunk_search(project=project, **arguments)
                shown = {"project": project.name}
        except (RegistryError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({**shown, **response.as_dict()}))
            return
        for note in response.notes:
            self.stderr.write(note)
        if not response.results:
            self.stdout.write("No results.")
        for hit in response.results:
            stale = self.style.WARNING(" (changed on disk)") if hit.stale else ""
            symbol = f"  {hit.symbol}" if hit.symbol else ""
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    f"{label(hit)}{hit.file_path}:{hit.start_line}-{hit.end_line}"
                )
                + f"  score {hit.score:.4f}{symbol}{stale}"
            )
            for line in hit.content.splitlines()[: options["lines"]]:
                self.stdout.write(f"    {line}")
        self.stdout.write(
            f"{response.total_count} results in {response.latency_ms:.0f} ms "
            f"({response.mode}, {response.embedded_fraction:.0%} embedded)"
        )
