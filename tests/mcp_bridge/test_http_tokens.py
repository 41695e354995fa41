"""MCP over HTTP checks tokens: the real runmcp process, the SDK's own client.

A request without a live token is refused before the MCP layer; a read
token searches its project but cannot index it, cannot reach another
project (worded as for an unknown one) and lists only its projects.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from registry.tokens import apitoken_create
from tests.mcp_bridge.test_runmcp_e2e import (
    RETRY_SOURCE,
    ROOT,
    call,
    call_error,
    drop_projects,
    free_port,
    make_repo,
    server_env,
)

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def session_with(url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as client:
        async with streamable_http_client(url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                yield session


def test_http_with_a_read_token_searches_but_cannot_index(transactional_db, tmp_path):
    from registry.services import project_create

    repo = make_repo(tmp_path / "a", "http-scope-a", "net.py", RETRY_SOURCE)
    mine = project_create(name="http-scope-a")
    project_create(name="http-scope-b")
    read = apitoken_create(name="reader", permission="read", projects=[mine])[1]
    write = apitoken_create(name="writer", permission="write", projects=[mine])[1]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runmcp", "--transport", "http"]
        + ["--port", str(port)],
        env=server_env(),
        cwd=str(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"

    async def scenario() -> dict:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                await anyio.sleep(0.1)
        seen: dict = {}
        # No token, or a wrong one: refused before any MCP message is read.
        async with httpx2.AsyncClient() as plain:
            for headers in ({}, {"Authorization": "Bearer cbmcp_00000000_wrong"}):
                response = await plain.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    headers=headers,
                )
                seen.setdefault("refused", []).append(response.status_code)
        async with session_with(url, read) as session:
            listed = await call(session, "list_projects")
            seen["listed"] = [project["name"] for project in listed["projects"]]
            seen["index"] = await call_error(
                session, "index_repository", repo_path=str(repo), project_id=mine.name
            )
            seen["other"] = await call_error(
                session, "search_code", query="retry", project_id="http-scope-b"
            )
            seen["unknown"] = await call_error(
                session, "search_code", query="retry", project_id="http-scope-zz"
            )
            seen["create"] = await call_error(session, "create_project", name="new")
        async with session_with(url, write) as session:
            indexed = await call(
                session, "index_repository", repo_path=str(repo), project_id=mine.name
            )
            seen["indexed"] = indexed["files_indexed"]
        async with session_with(url, read) as session:
            found = await call(
                session,
                "search_code",
                query="retry after waiting",
                project_id=mine.name,
            )
            seen["found"] = [hit["symbol"] for hit in found["results"]]
        return seen

    try:
        seen = anyio.run(scenario)
    finally:
        process.terminate()
        process.wait(timeout=30)
        drop_projects("http-scope-a", "http-scope-b")

    assert seen["refused"] == [401, 401]
    assert seen["listed"] == ["http-scope-a"]
    assert "lacks the `write` scope on project 'http-scope-a'" in seen["index"]
    assert "`read` scope on project 'http-scope-b'" in seen["other"]
    assert seen["other"].replace("http-scope-b", "X") == seen["unknown"].replace(
        "http-scope-zz", "X"
    )
    assert "`write` scope on every project" in seen["create"]
    sources = [
        p for p in repo.rglob("*") if p.is_file() and ".codebase-mcp" not in p.parts
    ]
    assert seen["indexed"] == len(sources)
    assert "retry_with_backoff" in seen["found"]


def test_http_refuses_to_serve_beyond_loopback_without_a_token(transactional_db):
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "runmcp", "--transport", "http"]
        + ["--host", "0.0.0.0", "--port", str(free_port())],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "without authentication" in result.stderr
    assert "apitoken create" in result.stderr
