"""`manage.py symbols NAME`: where a name is defined."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from registry.selectors import MAX_PROJECTS, project_get, projects_get
from registry.services import project_default_ensure
from search.exceptions import SearchError
from search.federation import symbol_find_federated
from search.navigation import MATCHES, symbol_find

PROJECTS_HELP = (
    "Project name or id (default: `default`). Repeat it to ask several projects "
    f"at once (at most {MAX_PROJECTS}); each hit then names its project."
)


def project_of(options: dict):
    """Return the project named by --project, or the default project."""
    names = options["project"]
    if isinstance(names, list):
        names = names[0] if names else None
    if names:
        return project_get(reference=names)
    return project_default_ensure()


def projects_of(options: dict):
    """Return the projects of a command given --project more than once, else None."""
    names = options["project"] or []
    if len(names) < 2:
        return None
    return projects_get(references=names)


def label(hit) -> str:
    """Return `[project] ` for a hit of a call over several projects."""
    return f"[{hit.project}] " if getattr(hit, "project", None) else ""


class Command(BaseCommand):
    help = "Find the definitions of a name: file:lines, kind, signature."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Identifier or qualified name (Class.method).")
        parser.add_argument("--project", action="append", help=PROJECTS_HELP)
        parser.add_argument("--kind", help="Only this kind: function, class, method...")
        parser.add_argument("--language", help="Only this language, e.g. python.")
        parser.add_argument("--repository", help="Only this repository (id or path).")
        parser.add_argument("--path-glob", help="Only paths matching a glob.")
        parser.add_argument(
            "--match", choices=MATCHES, default="exact", help="How names may match."
        )
        parser.add_argument(
            "--limit", type=int, default=10, help="Definitions (1-200)."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the full response as JSON."
        )

    def handle(self, *args, **options):
        try:
            arguments = {
                "name": options["name"],
                "kind": options["kind"],
                "language": options["language"],
                "repository": options["repository"],
                "path_glob": options["path_glob"],
                "match": options["match"],
                "limit": options["limit"],
                "body_lines": 40 if options["json"] else 0,
            }
            many = projects_of(options)
            if many is not None:
                found = symbol_find_federated(projects=many, **arguments)
                shown = {}
            else:
                project = project_of(options)
                found = symbol_find(project=project, **arguments)
                shown = {"project": project.name}
        except (RegistryError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({**shown, **found.as_dict()}))
            return
        for note in found.notes:
            self.stderr.write(note)
        for hit in found.symbols:
            stale = self.style.WARNING(" (changed on disk)") if hit.stale else ""
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    f"{label(hit)}{hit.file_path}:{hit.start_line}-{hit.end_line}"
                )
                + f"  {hit.kind} {hit.qualified_name}{stale}"
            )
            for line in hit.signature.splitlines():
                self.stdout.write(f"    {line.strip()}")
        self.stdout.write(f"{len(found.symbols)} of {found.total} definitions")
