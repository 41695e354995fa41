"""`manage.py apitoken create|revoke|list`: API tokens of the REST API and MCP over HTTP."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from registry.exceptions import RegistryError
from registry.models import ApiToken
from registry.selectors import project_get
from registry.tokens import (
    apitoken_create,
    apitoken_get,
    apitoken_list,
    apitoken_revoke,
)


def token_as_dict(token: ApiToken) -> dict:
    """Return what may be shown of a token: never its digest, never its secret."""
    return {
        "prefix": token.prefix,
        "name": token.name,
        "permission": token.permission,
        "projects": None
        if token.all_projects
        else sorted(project.name for project in token.projects.all()),
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


class Command(BaseCommand):
    help = (
        "Create, revoke or list API tokens. A token has a permission (read: "
        "search, navigation, status; write: also index, refresh, create, delete; "
        "admin: also move, backup, restore) over the projects named with "
        "--project, or over every project with --all-projects. The token itself "
        "is printed once, at creation; only its hash is stored."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token; print it once.")
        create.add_argument("name", help="Who or what uses the token.")
        create.add_argument(
            "--permission",
            choices=list(ApiToken.PERMISSIONS),
            default=ApiToken.READ,
            help="read (default), write or admin; each includes the ones before.",
        )
        scope = create.add_mutually_exclusive_group(required=True)
        scope.add_argument(
            "--project",
            action="append",
            default=[],
            metavar="NAME_OR_ID",
            help="A project the token covers (repeat for several).",
        )
        scope.add_argument(
            "--all-projects",
            action="store_true",
            help="Cover every project, including ones created later.",
        )
        create.add_argument("--json", action="store_true", help="Print JSON.")
        revoke = actions.add_parser("revoke", help="Revoke a token by its prefix.")
        revoke.add_argument("prefix", help="The prefix `apitoken list` shows.")
        listing = actions.add_parser("list", help="List tokens (never their secret).")
        listing.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **options):
        try:
            getattr(self, f"_{options['action']}")(options)
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, options) -> None:
        projects = None
        if not options["all_projects"]:
            projects = [project_get(reference=ref) for ref in options["project"]]
        token, plaintext = apitoken_create(
            name=options["name"], permission=options["permission"], projects=projects
        )
        if options["json"]:
            self.stdout.write(json.dumps({**token_as_dict(token), "token": plaintext}))
            return
        covered = (
            "every project"
            if token.all_projects
            else ", ".join(sorted(p.name for p in projects or []))
        )
        self.stdout.write(plaintext)
        self.stderr.write(
            f"Created token {token.name!r} ({token.prefix}): {token.permission} on "
            f"{covered}. It is shown only now; send it as `Authorization: Bearer "
            "<token>`."
        )

    def _revoke(self, options) -> None:
        token = apitoken_revoke(token=apitoken_get(reference=options["prefix"]))
        self.stdout.write(f"Revoked token {token.name!r} ({token.prefix}).")

    def _list(self, options) -> None:
        tokens = [token_as_dict(token) for token in apitoken_list()]
        if options["json"]:
            self.stdout.write(json.dumps(tokens))
            return
        if not tokens:
            self.stdout.write(
                "No API tokens: create one with `manage.py apitoken create NAME "
                "--permission read --project PROJECT`."
            )
            return
        for token in tokens:
            projects = (
                "all projects" if token["projects"] is None else token["projects"]
            )
            state = f"revoked {token['revoked_at']}" if token["revoked_at"] else "live"
            used = token["last_used_at"] or "never used"
            self.stdout.write(
                f"{token['prefix']}  {token['name']}  {token['permission']}  "
                f"{projects}  {state}  {used}"
            )
