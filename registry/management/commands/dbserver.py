"""`manage.py dbserver status|start|stop`: show and control the embedded PostgreSQL."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry.dbserver import (
    ServerError,
    server_ensure,
    server_layout,
    server_status,
    server_stop,
)


class Command(BaseCommand):
    help = "Show, start or stop the embedded PostgreSQL server of CODEBASE_MCP_HOME."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "action", choices=["status", "start", "stop"], help="What to do."
        )
        parser.add_argument("--json", action="store_true", help="Print status as JSON.")

    def handle(self, *args, **options):
        if not settings.EMBEDDED_DATABASE:
            raise CommandError(
                "REGISTRY_DATABASE_URL (or DATABASE_URL) is set, so an external "
                "PostgreSQL is in use and there is no embedded server to control."
            )
        layout = server_layout(home=settings.CODEBASE_MCP_HOME)
        try:
            if options["action"] == "start":
                server_ensure(layout=layout)
            elif options["action"] == "stop":
                was_running = server_stop(layout=layout)
                self.stdout.write("stopped" if was_running else "not running")
                return
        except ServerError as exc:
            raise CommandError(str(exc)) from exc
        status = server_status(layout=layout)
        if options["json"]:
            self.stdout.write(json.dumps(status))
            return
        state = self.style.SUCCESS("running") if status["running"] else "stopped"
        self.stdout.write(f"embedded PostgreSQL: {state}")
        for key in (
            "pid",
            "major_version",
            "pgdata",
            "socket_dir",
            "log_file",
            "run_as",
        ):
            self.stdout.write(f"  {key}: {status[key]}")
