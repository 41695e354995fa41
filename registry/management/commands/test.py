"""`manage.py test`: run the whole pytest suite on a private embedded server."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from registry.dbserver import EPHEMERAL_ENV, server_layout, server_stop


class Command(BaseCommand):
    help = (
        "Run the test suite with pytest. Every argument is passed to pytest "
        "(e.g. `manage.py test -x -k search`). Unless CODEBASE_MCP_HOME_FOR_TESTS "
        "is set, the tests get a fresh data directory and their own embedded "
        "PostgreSQL, stopped and removed afterwards; your data is never touched."
    )
    requires_system_checks = []

    def run_from_argv(self, argv: list[str]) -> None:
        # pytest's options (-x, -k …) are not this command's: skip argparse.
        sys.exit(self._run_pytest(argv[2:]))

    def handle(self, *args, **options) -> None:
        sys.exit(self._run_pytest([]))

    def _run_pytest(self, pytest_args: list[str]) -> int:
        keep = os.environ.get("CODEBASE_MCP_HOME_FOR_TESTS")
        home = Path(keep or tempfile.mkdtemp(prefix="cbmcp-test-"))
        if not keep:
            # Traverse-only, so a root-run server keeps its files inside the
            # temporary home and leaves with it.
            os.chmod(home, 0o711)
        env = {k: v for k, v in os.environ.items() if k not in _EXTERNAL_SETTINGS}
        env["CODEBASE_MCP_HOME"] = str(home)
        env.setdefault("HF_HUB_OFFLINE", "1")
        env[EPHEMERAL_ENV] = "1"
        try:
            return subprocess.run(
                [sys.executable, "-m", "pytest", *pytest_args],
                cwd=settings.BASE_DIR,
                env=env,
            ).returncode
        finally:
            if not keep:
                server_stop(layout=server_layout(home=home))
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(server_layout(home=home).root, ignore_errors=True)


# The suite runs on the embedded defaults; settings that point elsewhere would
# send test databases to a user's real server.
_EXTERNAL_SETTINGS = frozenset(
    {
        "REGISTRY_DATABASE_URL",
        "DATABASE_URL",
        "PROJECT_DATABASE_SERVERS",
        "OLLAMA_BASE_URL",
        "EMBEDDING_BACKEND",
        "WORKFLOW_MCP_URL",
        "API_TOKEN",
        "DEBUG",
    }
)
