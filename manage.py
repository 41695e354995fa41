#!/usr/bin/env python3
"""Run Django's command-line utility, creating the project's virtualenv first.

`python3 manage.py ...` works on a fresh clone: when it is not already running
inside `.venv`, it creates the virtualenv, installs what `pyproject.toml` asks
for (again whenever that file changes) and re-executes itself with the
virtualenv's interpreter. Everything the bootstrap says goes to stderr, because
`manage.py runmcp` speaks the MCP protocol on stdout.
"""

import hashlib
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".codebase-mcp-installed"


def _requirements() -> list[str]:
    """Return the runtime and dev requirements listed in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["dev"]]


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def _bootstrap() -> None:
    """Create .venv and install the requirements when missing or outdated."""
    digest = _requirements_digest()
    if VENV_PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    if not VENV_PYTHON.exists():
        print(f"codebase-mcp: creating virtualenv in {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("codebase-mcp: installing requirements (first run only)", file=sys.stderr)
    result = subprocess.run(
        [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", *_requirements()],
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    if result.returncode != 0:
        sys.exit(
            "codebase-mcp: installing requirements failed; see the pip output above"
        )
    STAMP.write_text(digest)


def main() -> None:
    """Run a Django management command inside the project's virtualenv."""
    if Path(sys.prefix).resolve() != VENV.resolve():
        _bootstrap()
        os.execv(
            str(VENV_PYTHON),
            [str(VENV_PYTHON), str(ROOT / "manage.py"), *sys.argv[1:]],
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
