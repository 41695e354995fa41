"""`manage.py quickstart`: set everything up, index this repository, search it."""

import io

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from indexing.exceptions import IndexingError
from registry.exceptions import RegistryError
from registry.selectors import project_find
from registry.services import project_create, project_default_ensure
from search.exceptions import SearchError
from search.selectors import chunk_search

DEMO_PROJECT = "demo"
DEMO_QUERIES = [
    "start the embedded postgres server when it is not running",
    "split camelCase identifiers into words",
]


class Command(BaseCommand):
    help = (
        "Set up Codebase MCP on the embedded defaults (PostgreSQL server, registry, "
        "default project), index this repository into the `demo` project and run "
        "two searches. Safe to run again: only changed files are re-indexed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--path", default=str(settings.BASE_DIR), help="Repository to index."
        )
        parser.add_argument(
            "--project", default=DEMO_PROJECT, help="Project to index into."
        )

    def handle(self, *args, **options):
        self.stdout.write("1/4 database: migrating the registry")
        call_command("migrate", interactive=False, verbosity=0, stdout=io.StringIO())
        try:
            default = project_default_ensure()
            self.stdout.write(f"2/4 default project: {default.database_name}")
            project = project_find(reference=options["project"]) or project_create(
                name=options["project"], description="Created by manage.py quickstart"
            )
            self.stdout.write(f"3/4 indexing {options['path']} into {project.name!r}")
            call_command(
                "index", options["path"], project=project.name, stdout=self.stdout
            )
            self.stdout.write("4/4 searching")
            for query in DEMO_QUERIES:
                response = chunk_search(project=project, query=query, limit=3)
                self.stdout.write(self.style.MIGRATE_HEADING(f'\n"{query}"'))
                for hit in response.results:
                    where = f"{hit.file_path}:{hit.start_line}-{hit.end_line}"
                    self.stdout.write(f"  {hit.score:.4f}  {where}  {hit.symbol or ''}")
        except (RegistryError, IndexingError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                '\nReady. Search with `python3 manage.py search "..." --project '
                f"{project.name}`, or connect an assistant (README: MCP setup)."
            )
        )
