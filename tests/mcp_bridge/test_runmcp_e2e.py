"""The real `manage.py runmcp` process, driven by the MCP SDK's own clients."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from django.db import connections
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "set_working_directory",
    "index_repository",
    "start_indexing_background",
    "get_indexing_status",
    "search_code",
    "list_projects",
    "create_project",
    "get_project_status",
    "find_symbol",
    "find_references",
    "file_outline",
    "grep_code",
    "refresh_index",
}

RETRY_SOURCE = textwrap.dedent(
    '''
    import time


    def retry_with_backoff(call, attempts=3):
        """Call again after waiting longer each time."""
        delay = 0.1
        for _ in range(attempts):
            try:
                return call()
            except OSError:
                time.sleep(delay)
                delay *= 2
        raise RuntimeError("gave up")
    '''
)
INVOICE_SOURCE = textwrap.dedent(
    '''
    def total_with_tax(lines, rate):
        """Sum invoice lines and add sales tax."""
        subtotal = sum(line.price * line.quantity for line in lines)
        return round(subtotal * (1 + rate), 2)
    '''
)


def make_repo(root: Path, project: str, filename: str, source: str) -> Path:
    (root / ".codebase-mcp").mkdir(parents=True)
    (root / ".codebase-mcp" / "config.json").write_text(
        json.dumps({"version": "1.0", "project": {"name": project}})
    )
    (root / filename).write_text(source)
    (root / "notes.md").write_text("# Notes\n\nNothing to see.\n")
    return root


class WorkflowServer:
    """A stand-in workflow-mcp: a real HTTP server whose answer a test sets."""

    def __init__(self) -> None:
        self.answer: dict = {}
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(outer.delay)
                body = json.dumps(outer.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/active"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def server_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("CODEBASE_MCP", "PATH", "HOME", "LANG", "LC_"))
    }
    env["REGISTRY_DATABASE_NAME"] = connections["default"].settings_dict["NAME"]
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_session(cwd: Path, **env: str):
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(ROOT / "manage.py"), "runmcp"],
        env=server_env(**env),
        cwd=str(cwd),
    )
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, tool: str, **arguments):
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise AssertionError(f"{tool} failed: {result.content[0].text}")
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, (
        f"{tool} unexpectedly succeeded: {result.structured_content}"
    )
    return result.content[0].text


def drop_projects(*names: str) -> None:
    from registry.selectors import project_find
    from registry.services import project_delete

    for name in names:
        project = project_find(reference=name)
        if project is not None:
            project_delete(project=project)


def test_stdio_tools_index_search_jobs_tiers_and_errors(transactional_db, tmp_path):
    repo = make_repo(tmp_path / "repo", "e2e-retry", "net.py", RETRY_SOURCE)
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    workflow = WorkflowServer()

    async def scenario():
        async with stdio_session(
            plain_dir,
            WORKFLOW_MCP_URL=workflow.url,
            WORKFLOW_MCP_CACHE_SECONDS="0",
            WORKFLOW_MCP_TIMEOUT="0.5",
        ) as session:
            tools = (await session.list_tools()).tools
            assert {tool.name for tool in tools} == TOOLS
            search = next(tool for tool in tools if tool.name == "search_code")
            properties = search.input_schema["properties"]
            assert set(properties) >= {
                "query",
                "project_id",
                "repository_id",
                "language",
                "file_type",
                "directory",
                "limit",
                "mode",
                "max_tokens",
            }
            assert search.input_schema["required"] == ["query"]
            assert search.output_schema["properties"]["results"]["type"] == "array"
            assert all(tool.description for tool in tools)

            # Tier 4: nothing configured, workflow-mcp knows no project.
            status = await call(session, "get_project_status")
            assert status["project"]["resolved_by"] == "default"
            assert status["project"]["name"] == "default"

            # Tier 2: the session's working directory holds a config.
            moved = await call(session, "set_working_directory", directory=str(repo))
            assert moved["project"]["name"] == "e2e-retry"
            assert moved["project"]["resolved_by"] == "session_config"
            assert moved["config_path"].endswith(".codebase-mcp/config.json")

            progress: list[float] = []

            async def on_progress(done, total, message):
                progress.append(done)

            result = await session.call_tool(
                "index_repository",
                {"repo_path": str(repo)},
                progress_callback=on_progress,
            )
            assert not result.is_error, result.content
            indexed = result.structured_content
            assert indexed["files_indexed"] == 2
            assert indexed["chunks_embedded"] == indexed["chunks_total"] > 0
            assert indexed["project"]["name"] == "e2e-retry"
            assert progress, "no progress notification arrived"

            found = await call(
                session,
                "search_code",
                query="call something again after waiting longer each time",
            )
            assert found["results"][0]["symbol"] == "retry_with_backoff"
            assert found["results"][0]["file_path"] == "net.py"
            assert found["project"]["resolved_by"] == "session_config"
            assert found["embedded_fraction"] == 1.0

            # Navigation over the same index, through the real server.
            defined = await call(session, "find_symbol", name="retry_with_backoff")
            [symbol] = defined["symbols"]
            assert (symbol["file_path"], symbol["kind"]) == ("net.py", "function")
            assert symbol["doc"] == "Call again after waiting longer each time."
            assert "def retry_with_backoff" in symbol["body"]
            uses = await call(session, "find_references", name="sleep")
            assert uses["files"][0]["references"][0]["kind"] == "call"
            assert (
                uses["files"][0]["references"][0]["container"] == "retry_with_backoff"
            )
            outline = await call(session, "file_outline", path="net.py")
            assert [n["name"] for n in outline["symbols"]] == ["retry_with_backoff"]
            assert (
                "did you mean `retry_with_backoff`"
                in (await call(session, "find_symbol", name="retry_with_backof"))[
                    "notes"
                ][0]
            )
            assert "No indexed file" in await call_error(
                session, "file_outline", path="missing.py"
            )
            grepped = await call(
                session, "grep_code", pattern=r"time\.\w+\(", regex=True
            )
            [hit_file] = grepped["files"]
            assert hit_file["file_path"] == "net.py"
            assert hit_file["matches"][0]["symbol"] == "retry_with_backoff"
            assert "not a valid regex" in await call_error(
                session, "grep_code", pattern="(x", regex=True
            )
            # An assistant edits a file, refreshes it alone, and finds the edit.
            (repo / "jitter.py").write_text(
                "def jittered_pause(seconds):\n    return seconds * 1.5\n"
            )
            refreshed = await call(session, "refresh_index", paths=["jitter.py"])
            [only] = refreshed["repositories"]
            assert (only["files_indexed"], only["chunks_embedded"]) == (1, 1)
            assert (await call(session, "find_symbol", name="jittered_pause"))[
                "symbols"
            ][0]["file_path"] == "jitter.py"
            assert (await call(session, "refresh_index"))["repositories"][0][
                "files_indexed"
            ] == 0
            (repo / "jitter.py").unlink()
            gone = await call(session, "refresh_index", paths=["jitter.py"])
            assert gone["repositories"][0]["files_deleted"] == 1
            # The hit's file, read back through the server as a resource.
            hit = found["results"][0]
            uri = (
                f"codebase://e2e-retry/{repo.name}/{hit['file_path']}"
                f"?lines={hit['start_line']}-{hit['end_line']}"
            )
            contents = (await session.read_resource(uri)).contents[0].text
            assert contents.startswith(f"net.py:{hit['start_line']}-")
            assert "def retry_with_backoff" in contents
            status = (
                (await session.read_resource("codebase://e2e-retry/status"))
                .contents[0]
                .text
            )
            assert status.startswith("project e2e-retry")

            started = await call(
                session,
                "start_indexing_background",
                repo_path=str(repo),
                force_reindex=True,
            )
            for _ in range(600):
                job = await call(
                    session, "get_indexing_status", job_id=started["job_id"]
                )
                if job["status"] in ("completed", "failed"):
                    break
                await anyio.sleep(0.1)
            assert job["status"] == "completed", job
            assert job["files_indexed"] == 2

            # Tier 3: workflow-mcp names the active project.
            await call(session, "create_project", name="e2e-workflow")
            workflow.answer = {"project": {"name": "e2e-workflow"}}
            await call(session, "set_working_directory", directory=str(plain_dir))
            status = await call(session, "get_project_status")
            assert status["project"]["resolved_by"] == "workflow_mcp"
            assert status["project"]["name"] == "e2e-workflow"
            workflow.delay = 2.0
            began = time.monotonic()
            status = await call(session, "get_project_status")
            assert status["project"]["resolved_by"] == "default"
            assert time.monotonic() - began < 1.8
            workflow.delay = 0.0

            # Several projects at once: each hit names its project.
            both = await session.call_tool(
                "search_code",
                {
                    "query": "call something again after waiting longer each time",
                    "projects": ["e2e-retry", "e2e-workflow", "e2e-retry"],
                },
            )
            assert not both.is_error, both.content
            merged = both.structured_content
            assert merged["project"] is None
            assert [p["name"] for p in merged["projects"]] == [
                "e2e-retry",
                "e2e-workflow",
            ]
            assert merged["results"][0]["project"] == "e2e-retry"
            assert merged["results"][0]["symbol"] == "retry_with_backoff"
            assert both.content[0].text.splitlines()[1].startswith("1. [e2e-retry] ")
            defined = await call(
                session,
                "find_symbol",
                name="retry_with_backoff",
                projects=["e2e-workflow", "e2e-retry"],
            )
            assert [s["project"] for s in defined["symbols"]] == ["e2e-retry"]
            grepped = await call(
                session, "grep_code", pattern="delay", projects=["e2e-retry"]
            )
            assert {f["project"] for f in grepped["files"]} == {"e2e-retry"}
            assert "not both" in await call_error(
                session,
                "search_code",
                query="x",
                project_id="e2e-retry",
                projects=["e2e-retry"],
            )
            assert "No project you can read" in await call_error(
                session, "find_symbol", name="x", projects=["e2e-retry", "nope"]
            )
            assert "at most 20" in await call_error(
                session, "grep_code", pattern="x", projects=[str(n) for n in range(30)]
            )

            # Tier 1: an explicit project wins over everything.
            status = await call(session, "get_project_status", project_id="e2e-retry")
            assert status["project"]["resolved_by"] == "explicit"
            assert status["chunks"] > 0

            # Bad input: tool errors with clear messages; the server keeps serving.
            assert "does not exist" in await call_error(
                session, "index_repository", repo_path=str(tmp_path / "missing")
            )
            assert "is a file" in await call_error(
                session, "index_repository", repo_path=str(repo / "net.py")
            )
            assert "No project named" in await call_error(
                session, "search_code", query="x", project_id="no-such-project"
            )
            assert "empty" in await call_error(session, "search_code", query="   ")
            assert "not an existing directory" in await call_error(
                session, "set_working_directory", directory=str(tmp_path / "nope")
            )
            strict = tmp_path / "strict"
            (strict / ".codebase-mcp").mkdir(parents=True)
            (strict / ".codebase-mcp" / "config.json").write_text(
                '{"strict_mode": true, "project": {'
            )
            assert "config.json" in await call_error(
                session, "set_working_directory", directory=str(strict)
            )
            assert "No indexing job" in await call_error(
                session, "get_indexing_status", job_id="not-a-job"
            )
            listed = await call(session, "list_projects")
            assert {"e2e-retry", "e2e-workflow"} <= {
                p["name"] for p in listed["projects"]
            }

    try:
        anyio.run(scenario)
    finally:
        workflow.close()
        drop_projects("e2e-retry", "e2e-workflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_transport_keeps_two_sessions_on_two_projects(transactional_db, tmp_path):
    from mcp.client.streamable_http import streamable_http_client

    repo_a = make_repo(tmp_path / "a", "e2e-http-a", "net.py", RETRY_SOURCE)
    repo_b = make_repo(tmp_path / "b", "e2e-http-b", "invoice.py", INVOICE_SOURCE)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "runmcp",
            "--transport",
            "http",
            "--port",
            str(port),
        ],
        env=server_env(),
        cwd=str(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"

    @asynccontextmanager
    async def http_session():
        async with streamable_http_client(url) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                yield session

    async def use(session, repo: Path, query: str) -> dict:
        await call(session, "set_working_directory", directory=str(repo))
        await call(session, "index_repository", repo_path=str(repo))
        return await call(session, "search_code", query=query, limit=5)

    async def scenario():
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                await anyio.sleep(0.1)
        async with http_session() as first, http_session() as second:
            await call(first, "set_working_directory", directory=str(repo_a))
            await call(second, "set_working_directory", directory=str(repo_b))
            results = {}

            async def run(name, session, repo, query):
                results[name] = await use(session, repo, query)

            async with anyio.create_task_group() as group:
                group.start_soon(run, "a", first, repo_a, "retry after waiting")
                group.start_soon(
                    run, "b", second, repo_b, "add sales tax to an invoice"
                )
            return results

    try:
        results = anyio.run(scenario)
    finally:
        process.terminate()
        process.wait(timeout=30)
        drop_projects("e2e-http-a", "e2e-http-b")

    assert results["a"]["project"]["name"] == "e2e-http-a"
    assert results["b"]["project"]["name"] == "e2e-http-b"
    assert {hit["file_path"] for hit in results["a"]["results"]} <= {
        "net.py",
        "notes.md",
    }
    assert {hit["file_path"] for hit in results["b"]["results"]} <= {
        "invoice.py",
        "notes.md",
    }
    assert results["a"]["results"][0]["symbol"] == "retry_with_backoff"
    assert results["b"]["results"][0]["symbol"] == "total_with_tax"
