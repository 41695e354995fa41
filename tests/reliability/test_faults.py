"""Faults: the database server goes away, the embedder misbehaves, disks refuse."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import sys
import textwrap
import threading
import time
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connections
from django.test import override_settings
from mcp import ClientSession, StdioServerParameters, stdio_client

import indexing.services as index_services
import indexing.storing as storing
from indexing.embedders import embedder_cache_clear
from indexing.jobs import index_job_create, index_job_run
from indexing.models import CodeChunk, CodeFile, IndexJob
from indexing.services import repository_index
from registry.databases import project_database_drop
from registry.dbserver import (
    ServerError,
    _make_private_dir,
    server_accepts,
    server_ensure,
    server_layout,
    server_stop,
    server_wait_stopped,
)
from registry.exceptions import ProjectDatabaseUnavailable
from registry.services import project_alias
from search.selectors import chunk_search

ROOT = Path(__file__).resolve().parents[2]
DIMENSION = 16

SOURCE = textwrap.dedent('''
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
    ''')


def files_are_whole(alias: str) -> None:
    """Assert every stored file has exactly the chunks it claims."""
    for stored in CodeFile.objects.using(alias):
        count = CodeChunk.objects.using(alias).filter(file=stored).count()
        assert count == stored.chunk_count, stored.relative_path


def many_files(root: Path, count: int) -> Path:
    root.mkdir()
    for n in range(count):
        (root / f"module_{n:03}.py").write_text(
            f"def scale_{n}(value):\n    return value * {n}\n\n\n"
            f"def offset_{n}(value):\n    return value + {n}\n"
        )
    return root


# --- The embedded PostgreSQL goes away under a running runmcp -------------------


def server_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("CODEBASE_MCP", "PATH", "HOME", "LANG", "LC_"))
    }
    env["REGISTRY_DATABASE_NAME"] = connections["default"].settings_dict["NAME"]
    return env


@asynccontextmanager
async def stdio_session(cwd: Path):
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(ROOT / "manage.py"), "runmcp"],
        env=server_env(),
        cwd=str(cwd),
    )
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def search(session: ClientSession, project: str) -> dict:
    result = await session.call_tool(
        "search_code",
        {"query": "wait longer between retries", "project_id": project, "limit": 3},
    )
    assert not result.is_error, result.content[0].text
    return result.structured_content


@pytest.mark.e2e
def test_runmcp_reconnects_after_the_server_restarts_or_stops(
    project_factory, tmp_path
):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "net.py").write_text(SOURCE)
    project = project_factory()
    repository_index(project=project, repo_path=str(repo))
    layout = server_layout(home=settings.CODEBASE_MCP_HOME)
    pids = []

    def postmaster_pid() -> int:
        return int((layout.pgdata / "postmaster.pid").read_text().split()[0])

    def restart() -> None:
        server_stop(layout=layout)
        server_wait_stopped(layout=layout)
        server_ensure(layout=layout)

    def stop() -> None:
        server_stop(layout=layout)
        server_wait_stopped(layout=layout)

    async def scenario() -> list[dict]:
        answers = []
        async with stdio_session(tmp_path) as session:
            answers.append(await search(session, project.name))
            pids.append(postmaster_pid())

            # Someone restarts the server: pooled connections are dead.
            await anyio.to_thread.run_sync(restart)
            pids.append(postmaster_pid())
            answers.append(await search(session, project.name))
            answers.append(await search(session, project.name))

            # Someone stops it: the next call starts it again.
            await anyio.to_thread.run_sync(stop)
            assert not server_accepts(layout=layout)
            answers.append(await search(session, project.name))
            pids.append(postmaster_pid())
            answers.append(await search(session, project.name))
        return answers

    try:
        answers = anyio.run(scenario)
    finally:
        server_ensure(layout=layout)
        # This thread's connections died with the server; pools check theirs.
        connections.close_all()

    assert server_accepts(layout=layout)
    assert len(set(pids)) == 3, pids
    assert all(a["results"][0]["symbol"] == "retry_with_backoff" for a in answers)
    # This process reconnects too (its pools hold connections from before).
    assert CodeChunk.objects.using(project_alias(project=project)).exists()


def test_a_database_dropped_behind_the_registry_fails_fast_naming_it(
    project_factory, settings
):
    project = project_factory()
    project_database_drop(database_name=project.database_name, server=project.server)
    settings.POOL_TIMEOUT = 1.0
    started = time.monotonic()
    with pytest.raises(
        ProjectDatabaseUnavailable,
        match=f"{project.database_name}.*does not.*restoreproject",
    ):
        chunk_search(project=project, query="anything", mode="keyword")
    # One pool timeout, then a direct attempt that says why; not a second wait.
    assert time.monotonic() - started < 1.0 + 3.0
    # Later calls know the pool is failing and ask directly: they answer
    # before the pool's 1 s timeout could have passed.
    started = time.monotonic()
    with pytest.raises(ProjectDatabaseUnavailable, match="dropproject"):
        chunk_search(project=project, query="anything", mode="keyword")
    assert time.monotonic() - started < 0.9


# --- The embedding backend times out or talks nonsense ---------------------------


class FakeOllama:
    """A real HTTP server speaking Ollama's /api/embed, failing on demand.

    `healthy` requests are answered properly, then every request fails the
    way `failure` says, until a test changes it.
    """

    def __init__(self) -> None:
        self.healthy = 10**9
        self.failure = "ok"
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests += 1
                    failing = outer.requests > outer.healthy
                    failure = outer.failure
                status, payload = outer.answer(
                    body["input"], failure if failing else "ok"
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fail(self, failure: str, *, after: int = 0) -> None:
        with self.lock:
            self.healthy = self.requests + after
            self.failure = failure

    @staticmethod
    def vector(text: str, dimension: int = DIMENSION) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest()
        return [1.0 + byte / 255 for byte in digest[:dimension]]

    def answer(self, texts: list[str], failure: str) -> tuple[int, bytes]:
        if failure == "slow":
            time.sleep(2.0)
        vectors = [self.vector(text) for text in texts]
        if failure == "garbage":
            return 200, b"<html>502 Bad Gateway</html>"
        if failure == "wrong_count":
            vectors = vectors[:1]
        elif failure == "nan":
            vectors[0][0] = float("nan")
        elif failure == "wrong_dimension":
            vectors = [self.vector(text, DIMENSION // 2) for text in texts]
        elif failure == "not_numbers":
            vectors = [["x"] * DIMENSION for _ in texts]
        return 200, json.dumps({"model": "fake", "embeddings": vectors}).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def ollama():
    fake = FakeOllama()
    embedder_cache_clear()
    with override_settings(
        EMBEDDING_BACKEND="ollama",
        OLLAMA_BASE_URL=fake.url,
        OLLAMA_EMBEDDING_MODEL="fake-embed",
        OLLAMA_TIMEOUT=0.5,
    ):
        yield fake
    embedder_cache_clear()
    fake.close()


def run_job(project, repo: Path) -> IndexJob:
    job = index_job_create(project=project, repo_path=str(repo))
    return index_job_run(job_id=job.id)


def test_an_embedder_that_times_out_or_talks_nonsense_fails_the_job_cleanly(
    project_factory, tmp_path, ollama
):
    repo = many_files(tmp_path / "repo", 150)
    project = project_factory()
    alias = project_alias(project=project)

    # One probe, then eight requests of 32 code texts and eight of 32 symbol
    # names (chunk_vectors): the first 256-chunk batch commits, the next fails.
    ollama.fail("slow", after=17)
    job = run_job(project, repo)
    assert job.status == IndexJob.Status.FAILED
    assert "did not answer within 0.5s" in job.error and "OLLAMA_TIMEOUT" in job.error
    total = CodeChunk.objects.using(alias).count()
    assert total > 256 and CodeFile.objects.using(alias).count() == 150
    assert CodeChunk.objects.using(alias).filter(embedding__isnull=False).count() == 256
    files_are_whole(alias)

    for failure, message in [
        ("garbage", "invalid JSON"),
        ("wrong_count", "returned 1 embeddings for 32 texts"),
        ("nan", "NaN or infinity"),
        ("wrong_dimension", "returned 8-d vectors, earlier 16-d"),
        ("not_numbers", "not numbers"),
    ]:
        ollama.fail(failure)
        job = run_job(project, repo)
        assert job.status == IndexJob.Status.FAILED, failure
        assert job.phase == "failed" and message in job.error, job.error
        assert job.finished_at is not None
        assert (
            CodeChunk.objects.using(alias).filter(embedding__isnull=False).count()
            == 256
        )
        files_are_whole(alias)

    ollama.fail("ok")
    job = run_job(project, repo)
    assert job.status == IndexJob.Status.COMPLETED, job.error
    assert job.files_unchanged == 150 and job.files_indexed == 0
    assert not CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists()
    assert CodeChunk.objects.using(alias).count() == total


def test_an_unreachable_embedder_is_named_in_the_job_error(project_factory, tmp_path):
    repo = many_files(tmp_path / "repo", 3)
    project = project_factory()
    embedder_cache_clear()
    # A port nobody listens on: connection refused, retried, then reported.
    with override_settings(
        EMBEDDING_BACKEND="ollama", OLLAMA_BASE_URL="http://127.0.0.1:9"
    ):
        job = run_job(project, repo)
    embedder_cache_clear()
    assert job.status == IndexJob.Status.FAILED
    assert "127.0.0.1:9" in job.error and "ollama serve" in job.error


def test_a_write_failure_midway_leaves_only_whole_files(
    project_factory, tmp_path, monkeypatch
):
    repo = many_files(tmp_path / "repo", 40)
    project = project_factory()
    alias = project_alias(project=project)
    real_write = storing.batch_write
    calls = []

    def failing_write(**kwargs):
        calls.append(len(kwargs["batch"]))
        if len(calls) == 3:
            raise OperationalError(
                'could not extend file "base/16384/16401": No space left on device'
            )
        return real_write(**kwargs)

    monkeypatch.setattr(index_services, "FILES_PER_TRANSACTION", 10)
    monkeypatch.setattr(storing, "batch_write", failing_write)
    job = run_job(project, repo)

    assert job.status == IndexJob.Status.FAILED
    assert "No space left on device" in job.error
    assert CodeFile.objects.using(alias).count() == 20
    files_are_whole(alias)

    monkeypatch.setattr(storing, "batch_write", real_write)
    job = run_job(project, repo)
    assert job.status == IndexJob.Status.COMPLETED, job.error
    assert (job.files_unchanged, job.files_indexed) == (20, 20)
    assert CodeFile.objects.using(alias).count() == 40
    files_are_whole(alias)


# --- The data directory cannot be written ------------------------------------------


def unusable_homes(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "home-is-a-file"
    a_file.write_text("not a directory\n")
    return {
        "a file": a_file,
        "under a file": a_file / "codebase-mcp",
        "refused by the kernel": Path("/sys/codebase-mcp-home"),
        "missing parent in /proc": Path("/proc/codebase-mcp/home"),
    }


@pytest.mark.parametrize(
    "case",
    ["a file", "under a file", "refused by the kernel", "missing parent in /proc"],
)
def test_dbserver_start_names_an_unusable_home(tmp_path, case):
    home = unusable_homes(tmp_path)[case]
    with override_settings(CODEBASE_MCP_HOME=home):
        with pytest.raises(CommandError, match=str(home)):
            call_command("dbserver", "start", stdout=io.StringIO())


def test_a_planted_private_directory_is_refused_not_adopted(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    planted = tmp_path / "codebase-mcp-planted"
    planted.symlink_to(victim)
    layout = server_layout(home=tmp_path / "home")
    owner = victim.stat().st_uid
    with pytest.raises(ServerError):
        _make_private_dir(planted, layout=layout)
    assert victim.stat().st_uid == owner
    if os.geteuid() == 0:
        shared = tmp_path / "codebase-mcp-shared"
        shared.mkdir(mode=0o777)
        os.chmod(shared, 0o777)
        os.chown(shared, pwd.getpwnam("nobody").pw_uid, -1)
        with pytest.raises(ServerError):
            _make_private_dir(shared, layout=layout)
