"""Load: parallel searches while indexing jobs rewrite the same project.

Run: cd /work/main && CODEBASE_MCP_HOME=/tmp/cbload .venv/bin/python \
         bench/load.py [--seconds 60] [--clients 8] [--path DIR]

A throw-away project on the embedded server of CODEBASE_MCP_HOME (dropped at
the end) gets the corpus indexed once (default: this repository). Then, for
`--seconds`, `--clients` threads call `chunk_search` back to back - the call an
MCP `search_code` tool makes after parsing, returning its connection to the
pool after each search as the tool wrapper does - with a rotation of queries
over the three modes, while one more thread runs indexing jobs on the same
repository one after another (`force_reindex`, so every run deletes and
rewrites every chunk under the searches' feet). Everything is on loopback: a
unix socket to PostgreSQL, MiniLM in-process.

Reported: errors (must be 0), deadlocks (PostgreSQL deadlock or lock-timeout
errors, plus any thread that stops making progress for `--stall-seconds`;
must be 0), search latency p50/p95, queries/s, jobs run, and the machine line.
The exit status is 1 when errors or deadlocks occurred.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    # Run as a script: make `bench` and the apps importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import ROOT, django_setup, machine_description, percentile

if TYPE_CHECKING:
    from registry.models import Project

QUERIES = (
    ("where is the connection pool of a project database registered", "hybrid"),
    ("split camelCase identifiers into words", "semantic"),
    ("chunk_search", "keyword"),
    ("retry an embedding request with backoff", "hybrid"),
    ("which files are skipped as binary or minified", "semantic"),
    ("advisory lock", "keyword"),
    ("start the embedded PostgreSQL server under a file lock", "hybrid"),
    ("reciprocal rank fusion of keyword and vector results", "hybrid"),
)
# Errors that mean two transactions waited on each other.
_LOCK_ERRORS = ("DeadlockDetected", "LockNotAvailable", "QueryCanceled")
_KEPT_MESSAGES = 10


@dataclass
class LoadReport:
    """What a load run measured."""

    seconds: float
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    deadlocks: int = 0
    stalled: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    jobs_completed: int = 0
    jobs_failed: int = 0

    @property
    def queries(self) -> int:
        return len(self.latencies_ms)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.deadlocks == 0 and self.queries > 0

    def lines(self) -> list[str]:
        """Return the human-readable report."""
        rate = self.queries / self.seconds if self.seconds else 0.0
        lines = [
            f"clients: {self.clients} search threads + 1 indexing thread, "
            f"{self.seconds:.1f} s",
            f"queries: {self.queries} ({rate:.1f}/s)  "
            f"latency p50 {percentile(self.latencies_ms, 0.5):.1f} ms  "
            f"p95 {percentile(self.latencies_ms, 0.95):.1f} ms  "
            f"max {max(self.latencies_ms, default=float('nan')):.1f} ms",
            f"indexing jobs: {self.jobs_completed} completed, "
            f"{self.jobs_failed} failed",
            f"errors: {self.errors}",
            f"deadlocks: {self.deadlocks}"
            + (f" (stalled: {', '.join(self.stalled)})" if self.stalled else ""),
        ]
        lines += [f"  {message}" for message in self.messages]
        return lines


def _lock_error(exc: BaseException) -> bool:
    """Return whether `exc`, or what caused it, is a lock wait gone wrong."""
    while exc is not None:
        if type(exc).__name__ in _LOCK_ERRORS:
            return True
        exc = exc.__cause__
    return False


class _Recorder:
    """Collect results from every thread under one lock."""

    def __init__(self, report: LoadReport, threads: int) -> None:
        self.report = report
        self.lock = threading.Lock()
        self.heartbeats = [time.monotonic()] * threads

    def beat(self, slot: int) -> None:
        self.heartbeats[slot] = time.monotonic()

    def latency(self, milliseconds: float) -> None:
        with self.lock:
            self.report.latencies_ms.append(milliseconds)

    def failure(self, where: str, exc: BaseException | str) -> None:
        with self.lock:
            if not isinstance(exc, str) and _lock_error(exc):
                self.report.deadlocks += 1
            else:
                self.report.errors += 1
            if len(self.report.messages) < _KEPT_MESSAGES:
                text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
                self.report.messages.append(f"{where}: {text}"[:300])


def load_run(
    *,
    project: Project,
    repo_path: str,
    seconds: float = 60.0,
    clients: int = 8,
    stall_seconds: float = 60.0,
) -> LoadReport:
    """Search from `clients` threads while jobs re-index `repo_path`; report.

    The project should already hold the repository, so searches find results
    from the first second.
    """
    from django.db import connections

    from indexing.jobs import index_job_create, index_job_run
    from indexing.models import IndexJob
    from search.selectors import chunk_search

    report = LoadReport(seconds=seconds, clients=clients)
    recorder = _Recorder(report, clients + 1)
    stop = threading.Event()

    def search(slot: int) -> None:
        turn = slot
        while not stop.is_set():
            query, mode = QUERIES[turn % len(QUERIES)]
            turn += 1
            started = time.perf_counter()
            try:
                chunk_search(project=project, query=query, mode=mode, limit=10)
            except Exception as exc:
                recorder.failure(f"search {slot}", exc)
            else:
                recorder.latency((time.perf_counter() - started) * 1000)
            finally:
                # As the MCP tool wrapper does: give the pooled connection back.
                connections.close_all()
                recorder.beat(slot)

    def index() -> None:
        slot = clients
        while not stop.is_set():
            try:
                job = index_job_create(
                    project=project, repo_path=repo_path, force_reindex=True
                )
                job = index_job_run(job_id=job.id)
            except Exception as exc:
                recorder.failure("indexing", exc)
            else:
                if job.status == IndexJob.Status.COMPLETED:
                    report.jobs_completed += 1
                else:
                    report.jobs_failed += 1
                    recorder.failure("indexing job", job.error)
            finally:
                connections.close_all()
                recorder.beat(slot)

    threads = [
        threading.Thread(target=search, args=(slot,), name=f"search-{slot}")
        for slot in range(clients)
    ]
    threads.append(threading.Thread(target=index, name="indexing"))
    started = time.monotonic()
    for thread in threads:
        thread.daemon = True
        thread.start()
    while time.monotonic() - started < seconds:
        time.sleep(0.2)
        now = time.monotonic()
        quiet = [
            thread.name
            for thread, beat in zip(threads, recorder.heartbeats, strict=True)
            if now - beat > stall_seconds
        ]
        if quiet:
            report.stalled = quiet
            break
    stop.set()
    report.seconds = time.monotonic() - started
    # The last job runs to its end; anything still blocked after that is stuck.
    finish_by = time.monotonic() + stall_seconds
    for thread in threads:
        thread.join(timeout=max(0.0, finish_by - time.monotonic()))
    report.stalled = sorted(
        set(report.stalled) | {t.name for t in threads if t.is_alive()}
    )
    report.deadlocks += len(report.stalled)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="How long to load (default 60)."
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="Parallel search threads (default 8)."
    )
    parser.add_argument(
        "--path", default=str(ROOT), help="Repository to index (default: this one)."
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=60.0,
        help="A thread silent this long counts as deadlocked (default 60).",
    )
    args = parser.parse_args()
    django_setup()
    from django.core.management import call_command

    from indexing.services import repository_index
    from registry.services import project_create, project_delete

    call_command("migrate", verbosity=0)
    print(machine_description())
    project = project_create(name=f"bench-load-{uuid.uuid4().hex[:6]}")
    try:
        warm = repository_index(project=project, repo_path=args.path)
        print(
            f"corpus: {args.path} ({warm.files_indexed} files, "
            f"{warm.chunks_total} chunks, first index {warm.seconds:.1f} s)"
        )
        report = load_run(
            project=project,
            repo_path=args.path,
            seconds=args.seconds,
            clients=args.clients,
            stall_seconds=args.stall_seconds,
        )
        for line in report.lines():
            print(line)
    finally:
        project_delete(project=project)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
