"""`manage.py runmcp`: serve the MCP tools over stdio (or Streamable HTTP)."""

import io
import logging
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

logger = logging.getLogger("codebase_mcp.mcp")


class Command(BaseCommand):
    help = (
        "Run the Codebase MCP server. stdio by default (for Claude Code / Claude "
        "Desktop); --transport http serves Streamable HTTP on --host/--port at /mcp."
    )
    # stdout is the protocol: no system-check or migration chatter may reach it.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument(
            "--transport",
            choices=["stdio", "http"],
            default="stdio",
            help="MCP transport.",
        )
        parser.add_argument(
            "--host", default="127.0.0.1", help="HTTP host (http only)."
        )
        parser.add_argument(
            "--port", type=int, default=8765, help="HTTP port (http only)."
        )

    def handle(self, *args, **options):
        from mcp_bridge.server import server, sessions

        # First run on a fresh machine: create the registry tables quietly.
        call_command("migrate", interactive=False, verbosity=0, stdout=io.StringIO())
        connections.close_all()
        try:
            if options["transport"] == "http":
                # Many clients share this process: no process-wide directory.
                sessions.single_client = False
                server.run(
                    "streamable-http", host=options["host"], port=options["port"]
                )
            else:
                server.run("stdio")
        except KeyboardInterrupt:
            pass
        finally:
            connections.close_all()
            sys.stderr.flush()
