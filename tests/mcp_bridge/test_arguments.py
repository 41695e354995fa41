"""Every tool refuses an argument it does not take, and names the ones it does."""

import anyio
import pytest
from mcp import Client

from mcp_bridge.server import server

# One valid call per tool, to which a misspelt argument is added.
CALLS = {
    "set_working_directory": {"directory": "/tmp"},
    "index_repository": {"repo_path": "/tmp/nowhere"},
    "start_indexing_background": {"repo_path": "/tmp/nowhere"},
    "refresh_index": {"paths": ["a.py"]},
    "get_indexing_status": {"job_id": "00000000-0000-0000-0000-000000000000"},
    "search_code": {"query": "retry"},
    "find_symbol": {"name": "parse"},
    "find_references": {"name": "parse"},
    "file_outline": {"path": "a.py"},
    "grep_code": {"pattern": "retry"},
    "list_projects": {},
    "create_project": {"name": "never-made"},
    "get_project_status": {},
}


def test_every_tool_is_covered():
    async def names():
        async with Client(server) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    assert anyio.run(names) == set(CALLS)


@pytest.mark.parametrize("tool", sorted(CALLS))
def test_a_misspelt_argument_is_a_tool_error_naming_the_valid_ones(db, tool):
    async def call():
        async with Client(server) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            schema = listed[tool].input_schema
            assert schema.get("additionalProperties") is False
            return await client.call_tool(tool, {**CALLS[tool], "langauge": "go"})

    result = anyio.run(call)
    assert result.is_error
    text = result.content[0].text
    assert "'langauge'" in text and f"{tool} takes" in text
    for name in CALLS[tool]:
        assert name in text
    if tool == "search_code":
        assert "did you mean 'language'" in text
