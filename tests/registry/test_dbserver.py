"""The embedded server: shared start-up, permissions, and the dbserver command."""

import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from registry.dbserver import server_accepts, server_layout, server_stop

ROOT = Path(__file__).resolve().parents[2]

START_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from registry.dbserver import server_ensure, server_layout
    layout = server_ensure(layout=server_layout(home=Path({home!r})))
    print(Path(layout.pgdata, "postmaster.pid").read_text().splitlines()[0])
    """
)


@pytest.fixture
def private_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("server") / "home"
    yield home
    layout = server_layout(home=home)
    server_stop(layout=layout)
    shutil.rmtree(layout.root, ignore_errors=True)


def test_two_processes_starting_at_once_end_with_one_server(private_home):
    script = START_SCRIPT.format(root=str(ROOT), home=str(private_home))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0, 0], outputs
    pids = {out.decode().strip() for out, _ in outputs}
    assert len(pids) == 1
    postmasters = subprocess.run(
        ["pgrep", "-f", f"postgres.*{server_layout(home=private_home).pgdata}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(postmasters) == 1


def test_start_never_loosens_a_private_parent(tmp_path):
    parent = tmp_path / "private-parent"
    parent.mkdir(mode=0o700)
    home = parent / "codebase-mcp"
    layout = server_layout(home=home)
    try:
        script = START_SCRIPT.format(root=str(ROOT), home=str(home))
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
        assert server_accepts(layout=layout)
        assert parent.stat().st_mode & 0o777 == 0o700
        if os.geteuid() == 0:
            # The service user cannot reach the private parent: data lives elsewhere.
            assert not str(layout.pgdata).startswith(str(parent))
    finally:
        server_stop(layout=layout)
        shutil.rmtree(layout.root, ignore_errors=True)


def test_dbserver_command_start_status_stop(private_home):
    with override_settings(CODEBASE_MCP_HOME=private_home):
        out = io.StringIO()
        call_command("dbserver", "start", stdout=out)
        assert "running" in out.getvalue()
        assert server_accepts(layout=server_layout(home=private_home))

        out = io.StringIO()
        call_command("dbserver", "stop", stdout=out)
        assert "stopped" in out.getvalue()
        assert not server_accepts(layout=server_layout(home=private_home))

        out = io.StringIO()
        call_command("dbserver", "status", stdout=out)
        assert "stopped" in out.getvalue()
