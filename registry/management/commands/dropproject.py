"""`manage.py dropproject NAME --yes`: delete a project and drop its database."""

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from registry.selectors import project_get
from registry.services import project_delete


class Command(BaseCommand):
    help = "Delete a project (by name or id) and drop its database. Needs --yes."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name or id.")
        parser.add_argument(
            "--yes", action="store_true", help="Confirm: the project's data is dropped."
        )

    def handle(self, *args, **options):
        try:
            project = project_get(reference=options["project"])
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        if not options["yes"]:
            raise CommandError(
                f"This drops the database {project.database_name} with everything "
                f"indexed in it; run again with --yes to confirm."
            )
        project_delete(project=project)
        self.stdout.write(self.style.SUCCESS(f"Dropped project {project.name!r}."))
