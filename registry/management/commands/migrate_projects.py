"""`manage.py migrate_projects`: bring every project database's schema up to date."""

from __future__ import annotations

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from registry.selectors import project_get
from registry.services import ProjectMigration, project_databases_migrate


class Command(BaseCommand):
    help = (
        "Apply pending per-project migrations (the `indexing` app) to every "
        "project database, one project at a time, first giving a project made "
        "before login roles existed its own role. A project that fails is "
        "reported and the others still run; the command then exits non-zero. "
        "Run `manage.py migrate` first for the registry itself."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--project",
            action="append",
            default=[],
            metavar="NAME_OR_ID",
            help="Migrate only this project (repeat for several). Default: all.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON list of results."
        )

    def handle(self, *args, **options):
        projects = None
        if options["project"]:
            try:
                projects = [project_get(reference=ref) for ref in options["project"]]
            except RegistryError as exc:
                raise CommandError(str(exc)) from exc
        results = project_databases_migrate(projects=projects)
        if options["json"]:
            self.stdout.write(
                json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2)
            )
        else:
            for result in results:
                self._report(result)
        failed = [result for result in results if not result.ok]
        summary = (
            f"{len(results)} project(s): {len(results) - len(failed)} up to date, "
            f"{len(failed)} failed"
        )
        if failed:
            names = ", ".join(result.name for result in failed)
            raise CommandError(
                f"{summary} ({names}). Fix the cause shown for each and run "
                "`manage.py migrate_projects` again; migrated projects stay migrated."
            )
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS(summary))

    def _report(self, result: ProjectMigration) -> None:
        where = f"{result.name} ({result.database_name} on {result.server})"
        if not result.ok:
            self.stderr.write(
                self.style.ERROR(f"{'FAILED':<9} {where}: {result.error}")
            )
        elif result.applied or result.role_created:
            applied = ", ".join(
                (["own login role"] if result.role_created else []) + result.applied
            )
            self.stdout.write(
                f"{'migrated':<9} {where}: {applied} ({result.seconds:.2f} s)"
            )
        else:
            self.stdout.write(f"{'current':<9} {where}")
