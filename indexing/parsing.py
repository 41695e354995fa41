"""Parse files into the rows the index stores, here or in worker processes.

Parsing (tree-sitter, chunks, symbols, references, BM25 terms) is the
Python half of storing a repository, and it is CPU-bound: in one process the
GIL leaves the machine's other cores to PostgreSQL alone. A large run hands
files to a pool of worker processes (INDEX_PARSE_WORKERS) in groups, keeps
their order, and takes the results back while the writer stores the files
before them. Nothing here touches Django or a database: a worker imports
only the parsers. Workers are spawned, so a script that indexes must keep
its top level behind `if __name__ == "__main__"` (manage.py, the benches and
the test runner do), as multiprocessing asks of any spawning program.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from indexing.chunking import Chunk, Definition, file_analyse
from indexing.terms import header_terms, identifier_terms

logger = logging.getLogger("codebase_mcp.indexing")

T = TypeVar("T")

# Files per task sent to a worker: enough to make the round trip cheap next
# to parsing them (a file is ~10 ms), few enough to keep the workers even.
GROUP_FILES = 8
# Groups in flight per worker: the pipe never runs dry, and memory stays bounded.
GROUPS_AHEAD = 4


def chunk_rows(*, relative_path: str, chunks: Sequence[Chunk]) -> list[tuple]:
    """Return (kind, symbol, start, end, content, content sha256, header, body) rows."""
    rows = []
    seen: set[tuple[int, int, str]] = set()
    for chunk in chunks:
        key = (chunk.start_line, chunk.end_line, chunk.content)
        if key in seen or not chunk.content.strip():
            continue
        seen.add(key)
        rows.append(
            (
                chunk.kind,
                chunk.symbol,
                chunk.start_line,
                chunk.end_line,
                chunk.content,
                hashlib.sha256(chunk.content.encode()).hexdigest(),
                header_terms(relative_path=relative_path, symbol=chunk.symbol),
                identifier_terms(text=chunk.content),
            )
        )
    return rows


@dataclass
class ParsedFile:
    """What one file's parse yields for the writer, or why it yielded nothing."""

    rows: list[tuple] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    reference_rows: list[str] = field(default_factory=list)
    failed: bool = False


@dataclass(frozen=True)
class ParseTask:
    """A file to parse: its text, language and path (for the header terms)."""

    relative_path: str
    text: str
    language: str
    max_chars: int


def file_parse(*, task: ParseTask) -> ParsedFile:
    """Parse one file into stored rows; a parser failure costs this file only."""
    try:
        analysis = file_analyse(
            text=task.text, language=task.language, max_chars=task.max_chars
        )
    except Exception:  # a chunker bug must cost one file, not the run
        logger.warning("chunking %s failed", task.relative_path, exc_info=True)
        return ParsedFile(failed=True)
    return ParsedFile(
        rows=chunk_rows(relative_path=task.relative_path, chunks=analysis.chunks),
        definitions=analysis.definitions,
        reference_rows=analysis.reference_rows,
    )


def _group_parse(tasks: list[ParseTask]) -> list[ParsedFile]:
    return [file_parse(task=task) for task in tasks]


def _parent_watch(parent: int) -> None:
    """End this worker when the indexer that started it is gone.

    A worker waits on a queue whose writing end it holds itself, so an
    indexer killed outright (SIGKILL, out of memory) would leave it waiting
    forever; its parent id changes when that happens.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parse_workers_usable() -> bool:
    """Return whether this process may start worker processes.

    A daemonic process (a Celery prefork child) may not have children.
    """
    return not multiprocessing.current_process().daemon


class ParsePipeline(Generic[T]):
    """Parse files in order: here until `start_after` files, then in worker processes.

    `put(item, task)` queues a file; `ready()` yields (item, parsed) for the
    files whose turn has come, in the order they were put, waiting only when
    too many are in flight; `drain()` yields the rest. Small runs (fewer
    files than `start_after`) never start a process. Workers are spawned, not
    forked: the indexer runs beside threads (the writer, a server's), and a
    fork copies their locks in whatever state they are.
    """

    def __init__(self, *, workers: int, start_after: int) -> None:
        self.workers = workers if parse_workers_usable() else 0
        self.start_after = start_after
        self.seen = 0
        self._executor: ProcessPoolExecutor | None = None
        self._group: list[tuple[T, ParseTask]] = []
        # (items, their tasks, a worker's future or the parsed files)
        self._flight: deque[
            tuple[list[T], list[ParseTask], Future | list[ParsedFile]]
        ] = deque()

    def put(self, item: T, task: ParseTask) -> None:
        """Queue one file; parse it now while the run is still small."""
        self.seen += 1
        if self._executor is None and (
            self.workers <= 0 or self.seen <= self.start_after
        ):
            self._flight.append(([item], [], [file_parse(task=task)]))
            return
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_parent_watch,
                initargs=(os.getpid(),),
            )
        self._group.append((item, task))
        if len(self._group) >= GROUP_FILES:
            self._send()

    def _send(self) -> None:
        if not self._group:
            return
        items = [item for item, _ in self._group]
        tasks = [task for _, task in self._group]
        self._group = []
        if self._executor is None:
            self._flight.append((items, [], _group_parse(tasks)))
            return
        try:
            future = self._executor.submit(_group_parse, tasks)
        except Exception:  # broken pool, or one failing to replace a dead worker
            # (a submit racing the pool's own clean-up of a killed worker
            # meets closed pipes: ValueError, OSError)
            self._broken()
            self._flight.append((items, [], _group_parse(tasks)))
            return
        self._flight.append((items, tasks, future))

    def _broken(self) -> None:
        # A worker died (killed, out of memory): the rest is parsed here.
        if self.workers:
            logger.warning("a parse worker process died; parsing in the indexer")
        if self._executor is not None:
            # Python 3.11 leaves a broken pool's other workers running, and
            # its exit waits for them: end them here. (No public handle.)
            for process in list(self._executor._processes.values()):
                process.terminate()
        self.close()
        self.workers = 0
        if self._group:
            # Put after everything in flight, before anything put later.
            group, self._group = self._group, []
            self._flight.append(
                ([item for item, _ in group], [], _group_parse([t for _, t in group]))
            )

    def _take(self) -> Iterator[tuple[T, ParsedFile]]:
        items, tasks, outcome = self._flight.popleft()
        if isinstance(outcome, Future):
            try:
                outcome = outcome.result()
            except Exception:  # the worker died, or the pool with it
                # A parser error costs its file in file_parse; what reaches
                # here is the pool's, so the group is parsed again here.
                logger.warning("parse worker failed", exc_info=True)
                self._broken()
                outcome = _group_parse(tasks)
        yield from zip(items, outcome, strict=True)

    def ready(self) -> Iterator[tuple[T, ParsedFile]]:
        """Yield the parsed files whose turn has come, oldest first."""
        limit = max(1, self.workers) * GROUPS_AHEAD
        while self._flight and (
            not isinstance(self._flight[0][2], Future)
            or self._flight[0][2].done()
            or len(self._flight) > limit
        ):
            yield from self._take()

    def drain(self) -> Iterator[tuple[T, ParsedFile]]:
        """Send the last group and yield every file still in flight, in order."""
        if self._executor is not None:
            self._send()
        while self._flight:
            yield from self._take()

    def close(self) -> None:
        """Stop the workers (without waiting for work nobody will read)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
