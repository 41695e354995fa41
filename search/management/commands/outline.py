"""`manage.py outline PATH`: the definitions of one indexed file."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from search.exceptions import SearchError
from search.management.commands.symbols import project_of
from search.navigation import file_outline


class Command(BaseCommand):
    help = "Outline an indexed file: its definitions as a tree, with line ranges."

    def add_arguments(self, parser):
        parser.add_argument("path", help="File path relative to its repository.")
        parser.add_argument(
            "--project", help="Project name or id (default: `default`)."
        )
        parser.add_argument("--repository", help="The repository, if several hold it.")
        parser.add_argument(
            "--json", action="store_true", help="Print the full response as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = project_of(options)
            outline = file_outline(
                project=project, path=options["path"], repository=options["repository"]
            )
        except (RegistryError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps({"project": project.name, **outline.as_dict()})
            )
            return
        for note in outline.notes:
            self.stderr.write(note)
        self.stdout.write(self.style.MIGRATE_HEADING(outline.file_path))
        pending = [(node, 1) for node in reversed(outline.symbols)]
        while pending:
            node, depth = pending.pop()
            self.stdout.write(
                f"{'  ' * depth}{node.start_line}-{node.end_line}  {node.kind} {node.name}"
            )
            pending.extend((child, depth + 1) for child in reversed(node.children))
        self.stdout.write(f"{outline.total} definitions")
