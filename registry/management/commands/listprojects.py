"""`manage.py listprojects`: show every registered project."""

import json

from django.core.management.base import BaseCommand

from registry.management.commands.createproject import project_as_dict
from registry.selectors import project_list


class Command(BaseCommand):
    help = "List projects with their database names."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print a JSON list.")

    def handle(self, *args, **options):
        projects = project_list()
        if options["json"]:
            self.stdout.write(json.dumps([project_as_dict(p) for p in projects]))
            return
        if not projects:
            self.stdout.write(
                "No projects yet: create one with `manage.py createproject NAME`."
            )
            return
        width = max(len(p.name) for p in projects)
        for project in projects:
            self.stdout.write(
                f"{project.name:<{width}}  {project.database_name}  {project.id}"
            )
