"""`manage.py grep PATTERN`: every indexed line matching a text or regex."""

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from search.exceptions import SearchError
from search.federation import code_grep_federated
from search.grep import DEFAULT_MAX_MATCHES, DEFAULT_MAX_PER_FILE, code_grep
from search.management.commands.symbols import (
    PROJECTS_HELP,
    label,
    project_of,
    projects_of,
)


class Command(BaseCommand):
    help = (
        "Find the indexed lines matching a text (or an RE2 regex with --regex), "
        "printed as path:line:text like ripgrep."
    )

    def add_arguments(self, parser):
        parser.add_argument("pattern", help="Text to find, or a regex with --regex.")
        parser.add_argument("--project", action="append", help=PROJECTS_HELP)
        parser.add_argument(
            "--regex", "-e", action="store_true", help="The pattern is an RE2 regex."
        )
        parser.add_argument(
            "--ignore-case", "-i", action="store_true", help="Match any case."
        )
        parser.add_argument(
            "--word", "-w", action="store_true", help="Match whole words only."
        )
        parser.add_argument("--repository", help="Only this repository (id or path).")
        parser.add_argument("--language", help="Only this language, e.g. python.")
        parser.add_argument("--file-type", help="Only this extension, e.g. py.")
        parser.add_argument("--directory", help="Only under this directory.")
        parser.add_argument("--path-glob", help="Only paths matching a glob.")
        parser.add_argument(
            "--context", "-C", type=int, default=0, help="Context lines (0-10)."
        )
        parser.add_argument(
            "--max-matches",
            type=int,
            default=DEFAULT_MAX_MATCHES,
            help=f"Matching lines to print (default {DEFAULT_MAX_MATCHES}).",
        )
        parser.add_argument(
            "--max-per-file",
            type=int,
            default=DEFAULT_MAX_PER_FILE,
            help=f"Matching lines per file (default {DEFAULT_MAX_PER_FILE}).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the full response as JSON."
        )

    def handle(self, *args, **options):
        try:
            arguments = {
                "pattern": options["pattern"],
                "regex": options["regex"],
                "case_sensitive": not options["ignore_case"],
                "whole_word": options["word"],
                "repository": options["repository"],
                "language": options["language"],
                "file_type": options["file_type"],
                "directory": options["directory"],
                "path_glob": options["path_glob"],
                "context_lines": options["context"],
                "max_matches": options["max_matches"],
                "max_per_file": options["max_per_file"],
            }
            many = projects_of(options)
            if many is not None:
                found = code_grep_federated(projects=many, **arguments)
                shown = {}
            else:
                project = project_of(options)
                found = code_grep(project=project, **arguments)
                shown = {"project": project.name}
        except (RegistryError, SearchError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({**shown, **found.as_dict()}))
            return
        for note in found.notes:
            self.stderr.write(note)
        for hit_file in found.files:
            path = label(hit_file) + hit_file.file_path
            if hit_file.stale:
                self.stderr.write(self.style.WARNING(f"{path}: changed on disk"))
            for match in hit_file.matches:
                first = match.line - len(match.context_before)
                for offset, text in enumerate(match.context_before):
                    self.stdout.write(f"{path}-{first + offset}-{text}")
                self.stdout.write(
                    self.style.MIGRATE_HEADING(f"{path}:{match.line}:") + match.text
                )
                for offset, text in enumerate(match.context_after, start=1):
                    self.stdout.write(f"{path}-{match.line + offset}-{text}")
        more = "" if found.totals_exact else "at least "
        self.stderr.write(
            f"{found.matches_shown} of {more}{found.matches} matching lines in "
            f"{more}{found.files_matched} files"
        )
