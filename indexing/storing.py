"""Write batches of analysed files: chunks, symbols, references and text, one transaction each.

What a file yields at index time is written together, so a file's chunks,
symbols, references and text never disagree and a crash leaves none half-written;
a changed file replaces only its own rows. Writing runs on a thread of its
own while the caller reads and analyses the next files.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from indexing.chunking import Definition
from indexing.models import SEGMENT_LINES
from indexing.walking import WalkedFile
from registry.databases import project_connection

# What a file's analysis stores: 0 = chunks only (before symbols), 1 = chunks,
# symbols and references, 2 = those and the file's text (grep_code). Files of
# an older analysis are analysed again; their vectors are reused.
ANALYSIS_VERSION = 2


@dataclass
class PendingFile:
    walked: WalkedFile
    sha256: str
    language: str
    rows: list[tuple]
    existing_id: int | None
    definitions: list[Definition] = field(default_factory=list)
    # The uses of each name (indexing.chunking.reference_row).
    reference_rows: list[str] = field(default_factory=list)
    # The decoded text the chunks came from (what grep_code searches).
    text: str = ""


_UPSERT_FILES = """
INSERT INTO code_files
    (repository_id, relative_path, language, size_bytes, sha256, mtime,
     chunk_count, indexed_at, analysis_version)
SELECT %s::uuid, f.*, %s::smallint FROM unnest(
    %s::text[], %s::text[], %s::bigint[], %s::text[], %s::float8[], %s::int[],
    %s::timestamptz[]
) AS f
ON CONFLICT (repository_id, relative_path) DO UPDATE SET
    language = EXCLUDED.language, size_bytes = EXCLUDED.size_bytes,
    sha256 = EXCLUDED.sha256, mtime = EXCLUDED.mtime,
    chunk_count = EXCLUDED.chunk_count, indexed_at = EXCLUDED.indexed_at,
    analysis_version = EXCLUDED.analysis_version
RETURNING id, relative_path
"""

_COPY_SYMBOLS = (
    "COPY code_symbols (repository_id, file_id, relative_path, language, name, "
    "qualified_name, kind, parent, start_line, end_line, signature, doc, chunk_id) "
    "FROM STDIN"
)
_COPY_REFERENCES = (
    "COPY code_references (file_id, name, lines, columns, kinds, containers) FROM STDIN"
)
_COPY_TEXTS = "COPY code_text_segments (file_id, first_line, content) FROM STDIN"
_CHUNK_IDS = (
    "SELECT nextval(pg_get_serial_sequence('code_chunks', 'id')) "
    "FROM generate_series(1, %s)"
)
_COPY_CHUNKS_WITH_IDS = (
    "COPY code_chunks (id, repository_id, file_id, relative_path, language, kind, "
    "symbol, start_line, end_line, content, content_sha256, header_terms, "
    "body_terms, embedding) FROM STDIN"
)
_COPY_CHUNKS = (
    "COPY code_chunks (repository_id, file_id, relative_path, language, kind, "
    "symbol, start_line, end_line, content, content_sha256, header_terms, "
    "body_terms, embedding) FROM STDIN"
)


def batch_write(*, alias: str, repository_id: str, batch: Sequence[PendingFile]) -> int:
    """Replace the chunks of a batch of files in one transaction; return chunks written.

    A chunk whose exact content and symbol already have a vector in the
    project (renamed file, unchanged function of a changed file) gets that
    vector copied.
    """
    hashes = list({row[5] for pending in batch for row in pending.rows})
    existing = [p.existing_id for p in batch if p.existing_id is not None]
    now = timezone.now()
    written = 0
    connection = project_connection(database_name=alias)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        reuse: dict[tuple[str, str | None], str] = {}
        if hashes:
            # A vector leans towards its chunk's symbol (chunk_vectors): the
            # same code under another name (a method copied into another
            # class) is embedded anew.
            cursor.execute(
                "SELECT DISTINCT ON (content_sha256, symbol) content_sha256, symbol, "
                "embedding::text FROM code_chunks WHERE content_sha256 = ANY(%s) "
                "AND embedding IS NOT NULL",
                [hashes],
            )
            reuse = {(sha, symbol): vector for sha, symbol, vector in cursor.fetchall()}
        if existing:
            cursor.execute(
                "DELETE FROM code_symbols WHERE file_id = ANY(%s)", [existing]
            )
            cursor.execute(
                "DELETE FROM code_references WHERE file_id = ANY(%s)", [existing]
            )
            cursor.execute(
                "DELETE FROM code_chunks WHERE file_id = ANY(%s)", [existing]
            )
            cursor.execute(
                "DELETE FROM code_text_segments WHERE file_id = ANY(%s)", [existing]
            )
        cursor.execute(
            _UPSERT_FILES,
            [
                repository_id,
                ANALYSIS_VERSION,
                [p.walked.relative_path for p in batch],
                [p.language for p in batch],
                [p.walked.size for p in batch],
                [p.sha256 for p in batch],
                [p.walked.mtime for p in batch],
                [len(p.rows) for p in batch],
                [now] * len(batch),
            ],
        )
        file_ids = {path: file_id for file_id, path in cursor.fetchall()}
        _texts_write(cursor=cursor, batch=batch, file_ids=file_ids)
        # A batch with definitions takes its chunk ids from the sequence
        # first, so each symbol is linked to its chunk here rather than by
        # reading the chunks back (0.14 s of Django's store phase).
        ids: list[int] | None = None
        if any(pending.definitions for pending in batch):
            cursor.execute(_CHUNK_IDS, [sum(len(p.rows) for p in batch)])
            ids = sorted(row[0] for row in cursor.fetchall())
        links: dict[int, list[tuple[int, int, int, str | None]]] = {}
        # COPY: the bulk path of PostgreSQL, without per-row SQL to build.
        with cursor.cursor.copy(
            _COPY_CHUNKS_WITH_IDS if ids is not None else _COPY_CHUNKS
        ) as copy:
            for pending in batch:
                path = pending.walked.relative_path
                file_id = file_ids[path]
                for (
                    kind,
                    symbol,
                    start,
                    end,
                    content,
                    sha,
                    header,
                    body,
                ) in pending.rows:
                    row = (
                        repository_id,
                        file_id,
                        path,
                        pending.language,
                        kind,
                        symbol,
                        start,
                        end,
                        content,
                        sha,
                        header,
                        body,
                        reuse.get((sha, symbol)),
                    )
                    if ids is not None:
                        chunk_id = ids[written]
                        row = (chunk_id, *row)
                        links.setdefault(file_id, []).append(
                            (start, end, chunk_id, symbol)
                        )
                    copy.write_row(row)
                    written += 1
        _symbols_write(
            cursor=cursor,
            repository_id=repository_id,
            batch=batch,
            file_ids=file_ids,
            chunks={
                file_id: _FileChunks(sorted(rows, key=lambda r: (r[1] - r[0], r[2])))
                for file_id, rows in links.items()
            },
        )
    return written


class _FileChunks:
    """A file's chunks, to find the one that holds each definition."""

    def __init__(self, rows: list[tuple[int, int, int, str | None]]) -> None:
        # Smallest first, so the first chunk around a line is the tightest.
        self.rows = rows
        self.own: dict[str | None, list[tuple[int, int, int]]] = {}
        for start, end, chunk_id, symbol in rows:
            self.own.setdefault(symbol, []).append((start, end, chunk_id))

    def holding(self, definition: Definition) -> int | None:
        """Return the definition's own chunk (its first line), else the smallest around."""
        line = definition.start_line
        for start, end, chunk_id in self.own.get(definition.qualified, ()):
            if start <= line <= end:
                return chunk_id
        for start, end, chunk_id, _ in self.rows:
            if start <= line <= end:
                return chunk_id
        return None


def text_segments(text: str) -> list[tuple[int, str]]:
    """Return (first line, text) runs of SEGMENT_LINES lines, each with its line breaks.

    Joined, they are the text. A line keeps its `\n`, so a segment matches
    as the whole text would (`$` before a break, nothing after the last one).
    Migration 0006 splits stored texts the same way in SQL.
    """
    lines = text.split("\n")
    pieces = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        pieces.append(lines[-1])
    if not pieces:
        return [(1, "")]
    return [
        (start + 1, "".join(pieces[start : start + SEGMENT_LINES]))
        for start in range(0, len(pieces), SEGMENT_LINES)
    ]


def _texts_write(*, cursor, batch: Sequence[PendingFile], file_ids: dict) -> None:
    """COPY the text of each file of a batch in segments (grep_code reads them)."""
    with cursor.cursor.copy(_COPY_TEXTS) as copy:
        for pending in batch:
            file_id = file_ids[pending.walked.relative_path]
            for first_line, content in text_segments(pending.text):
                copy.write_row((file_id, first_line, content))


def _symbols_write(
    *,
    cursor,
    repository_id: str,
    batch: Sequence[PendingFile],
    file_ids: dict,
    chunks: dict[int, _FileChunks],
) -> None:
    """COPY a batch's definitions, each with its chunk, and its references.

    The chunks were written just before in the same transaction, with ids
    known beforehand, so each symbol row is written once, linked.
    """
    with cursor.cursor.copy(_COPY_SYMBOLS) as copy:
        for pending in batch:
            path = pending.walked.relative_path
            file_id = file_ids[path]
            own = chunks.get(file_id)
            for d in pending.definitions:
                copy.write_row(
                    (
                        repository_id,
                        file_id,
                        path,
                        pending.language,
                        d.name,
                        d.qualified,
                        d.kind,
                        d.parent,
                        d.start_line,
                        d.end_line,
                        d.signature,
                        d.doc,
                        own.holding(d) if own is not None else None,
                    )
                )
    with cursor.cursor.copy(_COPY_REFERENCES) as copy:
        for pending in batch:
            if pending.reference_rows:
                prefix = f"{file_ids[pending.walked.relative_path]}\t"
                copy.write(prefix + f"\n{prefix}".join(pending.reference_rows) + "\n")


class BatchWriter:
    """Write batches on a second thread while the caller reads and chunks files.

    Chunking is Python work and writing is PostgreSQL work; overlapping them
    uses both cores of a laptop. The queue is short, so memory stays bounded
    and a failed write stops the run at the next batch.
    """

    def __init__(self, *, alias: str, repository_id: str) -> None:
        self.alias = alias
        self.repository_id = repository_id
        self.written = 0
        self.files = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[list[PendingFile] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(
            target=self._run, name="index-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while (batch := self._queue.get()) is not None:
                if self.error is None:
                    self.written += batch_write(
                        alias=self.alias, repository_id=self.repository_id, batch=batch
                    )
                    self.files += len(batch)
        except BaseException as exc:  # re-raised in the calling thread
            self.error = exc
            while self._queue.get() is not None:
                pass
        finally:
            project_connection(database_name=self.alias).close()

    def put(self, batch: list[PendingFile]) -> None:
        if self.error is not None:
            self.close()
        self._queue.put(batch)

    def close(self) -> None:
        """Wait for every queued batch; raise the writer's error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            raise self.error
