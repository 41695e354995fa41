"""`manage.py backupproject NAME [--output FILE]`: write a project's backup."""

import json
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.backup import project_backup
from registry.databases import database_name_sanitize
from registry.exceptions import RegistryError
from registry.selectors import project_get


class Command(BaseCommand):
    help = (
        "Back up one project into a single file: a pg_dump archive of its "
        "database plus a manifest (project, embedding model, schema version)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name or id.")
        parser.add_argument(
            "--output",
            help="File to write (default: <project>-<UTC time>.backup.tar in the "
            "current directory). An existing file is not overwritten.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the manifest as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = project_get(reference=options["project"])
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        output = Path(options["output"] or _default_name(project.name)).absolute()
        if output.exists():
            raise CommandError(
                f"{output} exists; choose another --output or move that file away."
            )
        try:
            manifest = project_backup(project=project, output=output)
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"output": str(output), **manifest}))
            return
        rows = sum(manifest["tables"].values())
        model = (manifest["embedding"] or {}).get("model_id") or "no vectors yet"
        self.stdout.write(
            self.style.SUCCESS(f"Backed up project {project.name!r} to {output}")
        )
        self.stdout.write(
            f"  {output.stat().st_size} bytes, {rows} rows in "
            f"{len(manifest['tables'])} tables, embedding model: {model}, "
            f"schema: {manifest['schema']['version']}"
        )


def _default_name(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{database_name_sanitize(name=name)}-{stamp}.backup.tar"
