"""`runmcp` with `"watch": true` follows the repository while it serves tools."""

import json
import time

import anyio
import pytest
from django.db import connections

from indexing.services import repository_index
from tests.mcp_bridge.test_runmcp_e2e import call, stdio_session

pytestmark = pytest.mark.e2e


def test_runmcp_watches_when_the_session_config_asks(project_factory, tmp_path):
    project = project_factory()
    repo = tmp_path / "repo"
    (repo / ".codebase-mcp").mkdir(parents=True)
    (repo / ".codebase-mcp" / "config.json").write_text(
        json.dumps({"version": "1.0", "project": {"name": project.name}, "watch": True})
    )
    (repo / "ledger.py").write_text("def ledger_opening(value):\n    return value\n")
    repository_index(project=project, repo_path=str(repo), embed=False)
    connections.close_all()

    async def scenario():
        async with stdio_session(repo) as session:
            (repo / "ledger.py").write_text(
                "def ledger_closing_balance(value):\n    return value * 2\n"
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                found = await call(
                    session, "find_symbol", name="ledger_closing_balance"
                )
                if found["symbols"]:
                    return found
                await anyio.sleep(0.2)
            raise AssertionError("the watcher inside runmcp did not index the edit")

    found = anyio.run(scenario)
    assert found["symbols"][0]["file_path"] == "ledger.py"
