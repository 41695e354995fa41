"""`manage.py runmcp`: serve the MCP tools over stdio (or Streamable HTTP)."""

import io
import logging
import os
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from indexing.exceptions import IndexingError
from indexing.watching import WatchNote, watcher_background_start
from mcp_bridge.resolution import project_resolve, session_watch_wanted
from registry.exceptions import RegistryError

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
        parser.add_argument(
            "--watch",
            action="store_true",
            help="Also watch the indexed repositories of the working directory's "
            "project and re-index what changes, on a background thread (as "
            '`"watch": true` in .codebase-mcp/config.json does).',
        )

    def handle(self, *args, **options):
        from mcp_bridge.server import server, sessions

        if options["transport"] == "http":
            _http_open_refuse(host=options["host"])
        # First run on a fresh machine: create the registry tables quietly.
        call_command("migrate", interactive=False, verbosity=0, stdout=io.StringIO())
        watcher = None
        if options["watch"] or session_watch_wanted(directory=os.getcwd()):
            watcher = _watcher_start()
        connections.close_all()
        try:
            if options["transport"] == "http":
                # Many clients share this process: no process-wide directory.
                sessions.single_client = False
                _http_serve(host=options["host"], port=options["port"])
            else:
                server.run("stdio")
        except KeyboardInterrupt:
            pass
        finally:
            if watcher is not None:
                watcher.close()
            connections.close_all()
            sys.stderr.flush()


def _http_open_refuse(*, host: str) -> None:
    """Refuse to serve HTTP beyond loopback while no token is configured.

    Without a token every caller may do everything; that stays the default
    on a loopback address (as before tokens existed), not on a network.
    """
    from config.auth import tokens_configured

    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if not loopback and not tokens_configured():
        raise CommandError(
            f"Refusing to serve MCP over HTTP on {host} without authentication: "
            "set API_TOKEN or create a token with `manage.py apitoken create NAME "
            "--permission read --all-projects`, then send it as `Authorization: "
            "Bearer <token>`; or bind 127.0.0.1."
        )


def _http_serve(*, host: str, port: int) -> None:
    """Serve Streamable HTTP at /mcp behind the token gate (mcp_bridge.server)."""
    import anyio
    import uvicorn

    from mcp_bridge.server import http_app, server

    config = uvicorn.Config(
        http_app(host=host),
        host=host,
        port=port,
        log_level=server.settings.log_level.lower(),
    )
    anyio.run(uvicorn.Server(config).serve)


def _watcher_start():
    """Start watching the working directory's project; None when it cannot."""
    try:
        project = project_resolve(working_directory=os.getcwd()).project
        return watcher_background_start(project=project, report=_watch_log)
    except (IndexingError, RegistryError) as exc:
        # The tools still serve; the index just is not followed.
        logger.warning("not watching: %s", exc)
        return None


def _watch_log(note: WatchNote) -> None:
    # stdout is the protocol: the watcher speaks through logging (stderr).
    if note.level == "error":
        logger.warning("watch: %s", note.text)
    else:
        logger.info("watch: %s", note.text)
