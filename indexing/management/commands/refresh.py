"""`manage.py refresh [PATH ...]`: update the index with what changed on disk."""

import json

from django.core.management.base import BaseCommand, CommandError

from indexing.exceptions import IndexingError
from indexing.services import repositories_refresh
from registry.exceptions import RegistryError
from registry.selectors import project_get
from registry.services import project_default_ensure


class Command(BaseCommand):
    help = (
        "Update a project's index with what changed on disk since it was indexed: "
        "every repository, one (--repository), or only the files named."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths",
            nargs="*",
            help="Only these files (absolute, or relative to the repository).",
        )
        parser.add_argument(
            "--project", help="Project name or id (default: `default`)."
        )
        parser.add_argument(
            "--repository", help="One indexed repository: its id, path or name."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the summaries as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = (
                project_get(reference=options["project"])
                if options["project"]
                else project_default_ensure()
            )
            summaries = repositories_refresh(
                project=project,
                repository=options["repository"],
                paths=options["paths"] or None,
            )
        except (IndexingError, RegistryError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "project": project.name,
                        "repositories": [s.as_dict() for s in summaries],
                    }
                )
            )
            return
        for summary in summaries:
            changed = summary.files_indexed + summary.files_deleted
            self.stdout.write(
                f"{summary.repository_path}: "
                + (
                    f"{summary.files_indexed} re-indexed, {summary.files_deleted} "
                    f"removed"
                    if changed
                    else "up to date"
                )
                + f" ({summary.files_unchanged} unchanged, {summary.seconds:.2f} s)"
            )
            for path, reason in sorted(summary.paths_refused.items()):
                self.stdout.write(f"  not indexed: {path} ({reason})")
