"""`manage.py restoreproject FILE [--name NEW]`: restore a project's backup."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backup import project_restore
from registry.exceptions import RegistryError


class Command(BaseCommand):
    help = (
        "Restore a backup made by backupproject into a new database. An existing "
        "project of the same name is refused unless --replace is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Backup file written by backupproject.")
        parser.add_argument(
            "--name", help="Project name to restore as (default: the backed-up name)."
        )
        parser.add_argument(
            "--server",
            help="Server for the database: `default` or a name from "
            "PROJECT_DATABASE_SERVERS (default: the replaced project's server, else "
            "the server with the fewest projects).",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Replace an existing project of that name; its current data is "
            "dropped once the restore has succeeded.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the result as JSON."
        )

    def handle(self, *args, **options):
        archive = Path(options["file"])
        if not archive.is_file():
            raise CommandError(f"{archive} is not a file; give a backupproject file.")
        try:
            report = project_restore(
                archive=archive,
                name=options["name"],
                server=options["server"],
                replace=options["replace"],
            )
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(warning))
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        verb = "Replaced" if report.replaced else "Restored"
        rows = sum(report.tables.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} project {report.project.name!r} from {archive} "
                f"({rows} rows verified)."
            )
        )
        self.stdout.write(f"database: {report.project.database_name}")
        self.stdout.write(f"server:   {report.project.server}")
