"""The four resolution tiers, with real files and a real HTTP server."""

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mcp_bridge.resolution import (
    ProjectConfigInvalid,
    project_resolve,
    session_config_find,
    session_config_load,
    workflow_cache_clear,
)
from registry.exceptions import ProjectNotFound
from registry.models import DEFAULT_DATABASE_NAME, Project


def write_config(directory, payload) -> str:
    config_dir = directory / ".codebase-mcp"
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "config.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_workflow_cache():
    workflow_cache_clear()
    yield
    workflow_cache_clear()


def test_explicit_project_by_name_and_id(project_factory):
    project = project_factory("explicit-one")
    assert project_resolve(project_id="explicit-one").tier == "explicit"
    assert project_resolve(project_id=str(project.id)).project.pk == project.pk


def test_unknown_explicit_project_is_an_error_not_a_fallback(
    transactional_db, tmp_path
):
    write_config(tmp_path, {"project": {"name": "configured"}})
    with pytest.raises(ProjectNotFound, match="createproject"):
        project_resolve(project_id="missing", working_directory=str(tmp_path))
    assert not Project.objects.filter(name="configured").exists()


def test_config_found_from_a_nested_directory_and_created(transactional_db, tmp_path):
    config_path = write_config(
        tmp_path, {"version": "1.0", "project": {"name": "auto-made"}}
    )
    nested = tmp_path.joinpath(*[f"d{i}" for i in range(19)])
    nested.mkdir(parents=True)

    resolved = project_resolve(working_directory=str(nested))

    assert resolved.tier == "session_config"
    assert resolved.config_path == config_path
    assert resolved.project.name == "auto-made"
    assert resolved.project.database_name.startswith("cb_proj_auto_made_")
    from registry.services import project_delete

    project_delete(project=resolved.project)


def test_config_search_stops_after_twenty_parents(tmp_path):
    write_config(tmp_path, {"project": {"name": "far"}})
    deep = tmp_path.joinpath(*[f"d{i}" for i in range(21)])
    deep.mkdir(parents=True)
    assert session_config_find(directory=deep) is None
    assert session_config_find(directory=deep.parent) is not None


def test_config_cache_rereads_changes_and_forgets_deleted(tmp_path):
    path = write_config(tmp_path, {"project": {"name": "first"}})
    assert session_config_load(path=path).project_name == "first"
    write_config(tmp_path, {"project": {"name": "second-name"}})
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert session_config_load(path=path).project_name == "second-name"
    os.unlink(path)
    assert session_config_find(directory=tmp_path) is None
    with pytest.raises(ProjectConfigInvalid, match="vanished"):
        session_config_load(path=path)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("{not json", "not valid JSON"),
        ({"project": "x"}, '"project" object'),
        ({"project": {"name": 3}}, "project.name"),
        ({"project": {"name": "x", "id": "nope"}}, "project.id"),
        ({"project": {"name": "x"}, "auto_switch": "yes"}, "auto_switch"),
    ],
)
def test_bad_config_falls_through_with_a_warning(
    transactional_db, tmp_path, payload, problem, caplog
):
    path = write_config(tmp_path, payload)
    resolved = project_resolve(working_directory=str(tmp_path))
    assert resolved.tier == "default"
    assert resolved.project.database_name == DEFAULT_DATABASE_NAME
    assert problem in caplog.text and path in caplog.text


@pytest.mark.parametrize(
    "payload",
    [
        '{"strict_mode": true, "project": ',
        {"strict_mode": True, "project": {"name": ""}},
    ],
)
def test_bad_config_in_strict_mode_is_an_error_naming_the_file(
    transactional_db, tmp_path, payload
):
    path = write_config(tmp_path, payload)
    with pytest.raises(ProjectConfigInvalid, match=path.replace(".", r"\.")):
        project_resolve(working_directory=str(tmp_path))


class _WorkflowServer:
    """A real HTTP server answering like workflow-mcp, optionally slowly."""

    def __init__(self, answer: dict, delay: float = 0.0) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                time.sleep(delay)
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:
                    pass  # the client gave up (the timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/active-project"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_workflow_mcp_tier_and_its_cache(project_factory, settings, tmp_path):
    project = project_factory("from-workflow")
    server = _WorkflowServer({"project": {"id": str(project.id), "name": project.name}})
    settings.WORKFLOW_MCP_URL = server.url
    try:
        first = project_resolve(working_directory=str(tmp_path))
        second = project_resolve(working_directory=str(tmp_path))
    finally:
        server.close()
    assert first.tier == second.tier == "workflow_mcp"
    assert first.project.pk == project.pk
    assert server.requests == 1


def test_workflow_mcp_timeout_falls_through_to_default(
    transactional_db, settings, tmp_path
):
    server = _WorkflowServer({"project_id": "whatever"}, delay=2.0)
    settings.WORKFLOW_MCP_URL = server.url
    settings.WORKFLOW_MCP_TIMEOUT = 0.3
    try:
        started = time.monotonic()
        resolved = project_resolve(working_directory=str(tmp_path))
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert resolved.tier == "default"
    assert elapsed < 1.5


def test_workflow_mcp_down_falls_through(transactional_db, settings, tmp_path):
    settings.WORKFLOW_MCP_URL = "http://127.0.0.1:9/"
    assert project_resolve(working_directory=str(tmp_path)).tier == "default"


def test_session_config_beats_workflow_mcp(transactional_db, settings, tmp_path):
    settings.WORKFLOW_MCP_URL = "http://127.0.0.1:9/"
    write_config(tmp_path, {"project": {"name": "config-wins"}})
    resolved = project_resolve(working_directory=str(tmp_path))
    assert resolved.tier == "session_config"
    from registry.services import project_delete

    project_delete(project=resolved.project)
