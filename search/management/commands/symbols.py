"""`manage.py symbols NAME`: where a name is defined."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from registry.selectors import project_get
from registry.services import project_default_ensure
from search.exceptions import SearchError
from search.navigation import MATCHES, symbol_find


def project_of(options: dict):
    """Return the project named by --project, or the default project."""
    if options["project"]:
        return project_get(reference=options["project"])
    return project_default_ensure()


class Command(BaseCommand):
    help = "Find the definitions of a name: file:lines, kind, signature."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Identifier or qualified name (Class.method).")
        parser.add_argument(
            "--project", help="Project name or id (default: `default`)."
        )
        parser.add_argument("--kind", help="Only this kind: function, class, method...")
        parser.add_argument("--language", help="Only this language, e.g. python.")
        parser.add_argument("--repository", help="Only this repository (id or path).")
        parser.add_argument("--path-glob", help="Only paths matching a glob.")
        parser.add_argument(
            "--match", choices=MATCHES, default="exact", help="How names may match."
        )
        parser.add_argument(
            "--limit", type=int, default=10, help="Definitions (1-200)."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the full response as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = project_of(options)
            found = symbol_find(
                project=project,
                name=options["name"],
                kind=options["kind"],
                language=options["language"],
                repository=options["repository"],
                path_glob=options["path_glob"],
                match=options["match"],
                limit=options["limit"],
                body_lines=40 if options["json"] else 0,
            )
        except (RegistryError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"project": project.name, **found.as_dict()}))
            return
        for note in found.notes:
            self.stderr.write(note)
        for hit in found.symbols:
            stale = self.style.WARNING(" (changed on disk)") if hit.stale else ""
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    f"{hit.file_path}:{hit.start_line}-{hit.end_line}"
                )
                + f"  {hit.kind} {hit.qualified_name}{stale}"
            )
            for line in hit.signature.splitlines():
                self.stdout.write(f"    {line.strip()}")
        self.stdout.write(f"{len(found.symbols)} of {found.total} definitions")
