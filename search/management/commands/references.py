"""`manage.py references NAME`: where a name is used."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from search.exceptions import SearchError
from search.management.commands.symbols import project_of
from search.navigation import REFERENCE_KINDS, reference_find


class Command(BaseCommand):
    help = "Find the uses of a name, grouped by file: line, kind, enclosing definition."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Identifier or qualified name (Class.method).")
        parser.add_argument(
            "--project", help="Project name or id (default: `default`)."
        )
        parser.add_argument("--kind", choices=REFERENCE_KINDS, help="Only this use.")
        parser.add_argument("--language", help="Only this language, e.g. python.")
        parser.add_argument("--repository", help="Only this repository (id or path).")
        parser.add_argument("--path-glob", help="Only paths matching a glob.")
        parser.add_argument("--directory", help="Only under this directory.")
        parser.add_argument("--limit", type=int, default=50, help="Uses (1-1000).")
        parser.add_argument("--per-file", type=int, default=20, help="Uses per file.")
        parser.add_argument(
            "--json", action="store_true", help="Print the full response as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = project_of(options)
            found = reference_find(
                project=project,
                name=options["name"],
                kind=options["kind"],
                language=options["language"],
                repository=options["repository"],
                path_glob=options["path_glob"],
                directory=options["directory"],
                limit=options["limit"],
                per_file=options["per_file"],
            )
        except (RegistryError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"project": project.name, **found.as_dict()}))
            return
        for note in found.notes:
            self.stderr.write(note)
        for definition in found.definitions:
            self.stdout.write(
                f"defined: {definition.file_path}:{definition.start_line}  "
                f"{definition.kind} {definition.qualified_name}"
            )
        for group in found.files:
            self.stdout.write(
                self.style.MIGRATE_HEADING(group.file_path) + f"  ({group.total} uses)"
            )
            for use in group.references:
                where = f"  [{use.container}]" if use.container else ""
                self.stdout.write(f"  {use.line:>5}  {use.kind:<9} {use.text}{where}")
        self.stdout.write(f"{found.total_references} uses in {found.total_files} files")
