"""`manage.py moveproject NAME --to SERVER`: move a project to another server."""

import json

from django.core.management.base import BaseCommand, CommandError

from operations.move import project_move
from registry.exceptions import RegistryError
from registry.selectors import project_get


class Command(BaseCommand):
    help = (
        "Move a project's database to another PostgreSQL server (pg_dump / "
        "pg_restore, row counts verified). A failure leaves it where it was."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name or id.")
        parser.add_argument(
            "--to",
            required=True,
            dest="server",
            help="Target server: `default` or a name from PROJECT_DATABASE_SERVERS.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the report as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = project_get(reference=options["project"])
            report = project_move(project=project, to_server=options["server"])
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(warning))
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        rows = sum(report.tables.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Moved project {report.project!r} from {report.source!r} to "
                f"{report.target!r} in {report.seconds:.1f} s ({rows} rows in "
                f"{len(report.tables)} tables verified)."
            )
        )
