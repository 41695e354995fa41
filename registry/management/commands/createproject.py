"""`manage.py createproject NAME`: register a project and provision its database."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from registry.services import project_create


class Command(BaseCommand):
    help = (
        "Create a project with its own PostgreSQL database and print the database name."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "name", help="Project name (any text up to 255 characters)."
        )
        parser.add_argument("--description", default="", help="Free-text description.")
        parser.add_argument(
            "--server",
            default=None,
            help="Database server to hold the project: `default` or a name from "
            "PROJECT_DATABASE_SERVERS (default: the server with the fewest projects).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the project as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = project_create(
                name=options["name"],
                description=options["description"],
                server=options["server"],
            )
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(project_as_dict(project)))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Created project {project.name!r} ({project.id})")
            )
            self.stdout.write(f"database: {project.database_name}")
            self.stdout.write(f"server:   {project.server}")


def project_as_dict(project) -> dict:
    """Return the JSON form of a project shared by the registry commands."""
    return {
        "id": str(project.id),
        "name": project.name,
        "description": project.description,
        "database_name": project.database_name,
        "server": project.server,
        "created_at": project.created_at.isoformat(),
        "updated_at": project.updated_at.isoformat(),
        "metadata": project.metadata,
    }
