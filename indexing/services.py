"""Index a repository into a project's database.

A run has two phases, so a large repository is searchable by keyword within
seconds and semantically as embeddings fill in:

1. walk, chunk and store: files are written in batches, each batch one
   transaction in which every changed file's old chunks are replaced by its
   new ones; a chunk whose exact content was embedded before (renamed files,
   unchanged functions of a changed file) gets its vector back at once;
2. embed: chunks without a vector are embedded in batches, each committed.

A run killed at any point and started again finishes the work: committed
files are recognised by their hash, missing vectors are filled in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from indexing.chunking import (
    Chunk,
    Definition,
    Reference,
    file_analyse,
    language_for_path,
)
from indexing.embedders import Embedder, embedder_get
from indexing.exceptions import (
    EmbeddingModelMismatch,
    IndexingInProgress,
    RepositoryPathInvalid,
)
from indexing.models import CodeChunk, CodeFile, EmbeddingSpace, Repository
from indexing.terms import header_terms, identifier_terms, symbol_words
from indexing.walking import OPEN_FLAGS, WalkedFile, repository_walk
from registry.databases import project_connection, repository_lock_key
from registry.models import Project
from registry.services import project_alias

logger = logging.getLogger("codebase_mcp.indexing")

FILES_PER_TRANSACTION = 64
# What file_analyse yields: 0 = chunks only (before symbols), 1 = chunks,
# symbols and references. Files of an older analysis are analysed again.
ANALYSIS_VERSION = 1
# A run that writes or deletes this many files refreshes planner statistics.
ANALYZE_AFTER_FILES = 50
EMBED_BATCH = 256


@dataclass
class IndexProgress:
    """A snapshot of a run, passed to progress callbacks."""

    phase: str = "walking"
    files_total: int = 0
    files_done: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    files_skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    chunks_total: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_to_embed: int = 0


@dataclass
class IndexSummary(IndexProgress):
    """What a finished run did."""

    repository_id: str = ""
    repository_path: str = ""
    seconds: float = 0.0
    store_seconds: float = 0.0
    embed_seconds: float = 0.0
    embedding_model: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


ProgressCallback = Callable[[IndexProgress], None]


def repository_path_validate(*, repo_path: str) -> Path:
    """Return the resolved directory to index, or raise RepositoryPathInvalid.

    The resolved path is checked against the allowed roots before anything is
    said about what it is, so the errors cannot be used to learn which paths
    exist outside the roots.
    """
    if not isinstance(repo_path, str) or not repo_path.strip():
        raise RepositoryPathInvalid("A repository path is required.")
    if "\x00" in repo_path:
        raise RepositoryPathInvalid("A repository path must not contain NUL bytes.")
    if not _utf8(repo_path):
        raise RepositoryPathInvalid(
            f"{repo_path!r} is not valid UTF-8, which the index cannot store."
        )
    path = Path(os.path.expanduser(repo_path.strip()))
    if not path.is_absolute():
        raise RepositoryPathInvalid(
            f"{repo_path!r} is relative; give the absolute path of the repository."
        )
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        # Python 3.11 reports a symlink loop as RuntimeError.
        raise RepositoryPathInvalid(
            f"{repo_path} cannot be resolved ({exc}); give the repository's real path."
        ) from None
    if not _utf8(str(resolved)):
        raise RepositoryPathInvalid(
            f"{str(resolved)!r} is not valid UTF-8, which the index cannot store; "
            "rename the directory."
        )
    _check_allowed_root(resolved)
    try:
        mode = resolved.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise RepositoryPathInvalid(
            f"{repo_path} does not exist; check the path."
        ) from None
    except OSError as exc:
        raise RepositoryPathInvalid(
            f"{repo_path} cannot be examined ({exc.strerror or exc}); check the path."
        ) from None
    if stat.S_ISREG(mode):
        raise RepositoryPathInvalid(
            f"{repo_path} is a file, not a directory; give the repository's root "
            "folder."
        )
    if not stat.S_ISDIR(mode):
        raise RepositoryPathInvalid(
            f"{repo_path} is not a directory (a device, FIFO or socket); give the "
            "repository's root folder."
        )
    return resolved


def _utf8(text: str) -> bool:
    """Return whether `text` can be stored: file names need not be UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _allowed_roots() -> list[Path]:
    configured = [r for r in settings.CODEBASE_MCP_ALLOWED_ROOTS if r]
    if configured:
        return [Path(os.path.expanduser(r)).resolve() for r in configured]
    return [Path.home().resolve(), Path.cwd().resolve(), Path("/tmp").resolve()]


_FORBIDDEN_ROOTS = ("/etc", "/proc", "/sys", "/dev", "/boot", "/run")


def _check_allowed_root(path: Path) -> None:
    text = str(path)
    for forbidden in _FORBIDDEN_ROOTS:
        if text == forbidden or text.startswith(forbidden + "/"):
            raise RepositoryPathInvalid(
                f"{path} lies under {forbidden}, a system directory that is never "
                "indexed."
            )
    roots = _allowed_roots()
    if not any(path == root or root in path.parents for root in roots):
        listed = ", ".join(str(r) for r in roots)
        raise RepositoryPathInvalid(
            f"{path} is outside the allowed roots ({listed}); add its parent to "
            "CODEBASE_MCP_ALLOWED_ROOTS to index it."
        )


def embedding_space_check(
    *, alias: str, embedder: Embedder, reembed: bool = False
) -> EmbeddingSpace:
    """Record the project's embedding model, or refuse vectors of another one.

    With `reembed`, drop every vector (of the old model, or of this one made
    with older settings such as SYMBOL_VECTOR_WEIGHT) and switch the project to
    the configured model; the run then embeds every chunk again.
    """
    space = EmbeddingSpace.objects.using(alias).first()
    if space is None:
        space = EmbeddingSpace.objects.using(alias).create(
            model_id=embedder.model_id, dimension=embedder.dimension
        )
    elif (
        reembed
        or space.model_id != embedder.model_id
        or space.dimension != embedder.dimension
    ):
        if not reembed:
            raise EmbeddingModelMismatch(
                f"This project was indexed with {space.model_id} ({space.dimension}-d) "
                f"but the configured embedder is {embedder.model_id} "
                f"({embedder.dimension}-d); vectors of two models cannot be mixed. "
                "Re-embed the whole project with `manage.py index PATH --reembed` "
                "(or switch EMBEDDING_BACKEND back)."
            )
        with transaction.atomic(using=alias):
            CodeChunk.objects.using(alias).update(embedding=None)
            with project_connection(database_name=alias).cursor() as cursor:
                cursor.execute(
                    f"DROP INDEX IF EXISTS code_chunks_embedding_hnsw_{space.dimension}"
                )
            space.model_id = embedder.model_id
            space.dimension = embedder.dimension
            space.save(using=alias)
    return space


def embedding_index_ensure(*, alias: str, dimension: int) -> None:
    """Build the HNSW cosine index over the project's vectors if it is missing."""
    dimension = int(dimension)
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS code_chunks_embedding_hnsw_{dimension} "
            f"ON code_chunks USING hnsw ((embedding::vector({dimension})) "
            "vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )


def _read_text(
    path: str, *, max_bytes: int
) -> tuple[bytes | None, str | None, str | None, os.stat_result | None]:
    """Return (raw bytes, text, skip reason, status of what was read) for a file.

    Between the walk and this read the file may have vanished or been swapped
    for a symlink out of the repository, a FIFO, a directory or something far
    larger; so it is opened as the walker opens it (no symlink followed, never
    blocking) and checked again on the descriptor.
    """
    try:
        descriptor = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        return None, None, "vanished", None
    except OSError:
        return None, None, "unreadable", None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return None, None, "unreadable", None
        if status.st_size > max_bytes:
            return None, None, "too_large", None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            # One byte over the limit tells a file that grew after fstat.
            raw = handle.read(max_bytes + 1)
    except OSError:
        return None, None, "unreadable", None
    finally:
        os.close(descriptor)
    if len(raw) > max_bytes:
        return None, None, "too_large", None
    if b"\x00" in raw:
        return raw, None, "binary", status
    try:
        return raw, raw.decode("utf-8"), None, status
    except UnicodeDecodeError:
        return raw, None, "invalid_utf8", status


@dataclass
class _PendingFile:
    walked: WalkedFile
    sha256: str
    language: str
    rows: list[tuple]
    existing_id: int | None
    definitions: list[Definition] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)


def _chunk_rows(*, relative_path: str, chunks: Sequence[Chunk]) -> list[tuple]:
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
    'COPY code_references (file_id, name, line, "column", kind, container) FROM STDIN'
)
_COPY_CHUNKS = (
    "COPY code_chunks (repository_id, file_id, relative_path, language, kind, "
    "symbol, start_line, end_line, content, content_sha256, header_terms, "
    "body_terms, embedding) FROM STDIN"
)


def _write_batch(
    *, alias: str, repository_id: str, batch: Sequence[_PendingFile]
) -> int:
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
        # COPY: the bulk path of PostgreSQL, without per-row SQL to build.
        with cursor.cursor.copy(_COPY_CHUNKS) as copy:
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
                    copy.write_row(
                        (
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
                    )
                    written += 1
        _symbols_write(
            cursor=cursor, repository_id=repository_id, batch=batch, file_ids=file_ids
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


def _chunk_links(*, cursor, file_ids: list[int]) -> dict[int, _FileChunks]:
    """Return the chunks just written for each file."""
    cursor.execute(
        "SELECT file_id, start_line, end_line, id, symbol FROM code_chunks "
        "WHERE file_id = ANY(%s) ORDER BY file_id, end_line - start_line, id",
        [file_ids],
    )
    rows: dict[int, list[tuple[int, int, int, str | None]]] = {}
    for file_id, start, end, chunk_id, symbol in cursor.fetchall():
        rows.setdefault(file_id, []).append((start, end, chunk_id, symbol))
    return {file_id: _FileChunks(chunks) for file_id, chunks in rows.items()}


def _symbols_write(
    *, cursor, repository_id: str, batch: Sequence[_PendingFile], file_ids: dict
) -> None:
    """COPY a batch's definitions, each with its chunk, and its references.

    The chunks were written just before in the same transaction; reading
    their ids here keeps each symbol row written once.
    """
    analysed = [file_ids[p.walked.relative_path] for p in batch if p.definitions]
    chunks = _chunk_links(cursor=cursor, file_ids=analysed) if analysed else {}
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
            file_id = file_ids[pending.walked.relative_path]
            for r in pending.references:
                copy.write_row(
                    (
                        file_id,
                        r.name,
                        r.line,
                        r.column,
                        r.kind,
                        r.container,
                    )
                )


class _BatchWriter:
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
        self._queue: queue.Queue[list[_PendingFile] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(
            target=self._run, name="index-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while (batch := self._queue.get()) is not None:
                if self.error is None:
                    self.written += _write_batch(
                        alias=self.alias, repository_id=self.repository_id, batch=batch
                    )
                    self.files += len(batch)
        except BaseException as exc:  # re-raised in the calling thread
            self.error = exc
            while self._queue.get() is not None:
                pass
        finally:
            project_connection(database_name=self.alias).close()

    def put(self, batch: list[_PendingFile]) -> None:
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


class _Reporter:
    """Throttle progress callbacks to a few per second."""

    def __init__(self, callback: ProgressCallback | None, interval: float = 0.25):
        self.callback = callback
        self.interval = interval
        self.last = 0.0

    def __call__(self, progress: IndexProgress, *, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            self.callback(progress)


def repository_index(
    *,
    project: Project,
    repo_path: str,
    force_reindex: bool = False,
    reembed: bool = False,
    embed: bool = True,
    progress: ProgressCallback | None = None,
    embedder: Embedder | None = None,
) -> IndexSummary:
    """Index (or re-index incrementally) a repository into a project.

    Raise RepositoryPathInvalid for a bad path, IndexingInProgress when another
    run holds the same project and repository, EmbeddingModelMismatch when the
    project holds vectors of another model (unless `reembed`).
    """
    started = time.monotonic()
    root = repository_path_validate(repo_path=repo_path)
    alias = project_alias(project=project)
    connection = project_connection(database_name=alias)
    connection.ensure_connection()
    key = repository_lock_key(str(root))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        locked = cursor.fetchone()[0]
    if not locked:
        raise IndexingInProgress(
            f"{root} is being indexed into project {project.name!r} by another run; "
            "wait for it to finish (get_indexing_status / manage.py index shows it)."
        )
    try:
        embedder = embedder or (embedder_get() if embed else None)
        space = (
            embedding_space_check(alias=alias, embedder=embedder, reembed=reembed)
            if embedder
            else None
        )
        summary = _store_phase(
            project=project,
            alias=alias,
            root=root,
            force_reindex=force_reindex,
            reporter=_Reporter(progress),
        )
        summary.store_seconds = time.monotonic() - started
        if embedder is not None and space is not None:
            embed_started = time.monotonic()
            summary.embedding_model = embedder.model_id
            chunks_embed(
                alias=alias,
                embedder=embedder,
                dimension=space.dimension,
                progress=summary,
                reporter=_Reporter(progress),
            )
            summary.embed_seconds = time.monotonic() - embed_started
        summary.phase = "completed"
        summary.seconds = time.monotonic() - started
        if progress:
            progress(summary)
        return summary
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except Exception:  # the lock dies with the connection anyway
            logger.debug("advisory unlock failed", exc_info=True)


def _store_phase(
    *,
    project: Project,
    alias: str,
    root: Path,
    force_reindex: bool,
    reporter: _Reporter,
) -> IndexSummary:
    repository, _ = Repository.objects.using(alias).get_or_create(
        path=str(root), defaults={"name": root.name}
    )
    summary = IndexSummary(repository_id=str(repository.id), repository_path=str(root))
    walk = repository_walk(
        root=str(root),
        max_file_bytes=settings.INDEX_MAX_FILE_BYTES,
        languages=language_for_path,
    )
    skipped: Counter[str] = Counter(walk.skipped)
    summary.files_total = len(walk.files)
    summary.phase = "storing"
    reporter(summary, force=True)

    known = {
        row["relative_path"]: row
        for row in CodeFile.objects.using(alias)
        .filter(repository=repository)
        .values(
            "id", "relative_path", "sha256", "size_bytes", "mtime", "analysis_version"
        )
    }
    seen: set[str] = set()
    batch: list[_PendingFile] = []
    unchanged_mtime: list[tuple[int, float]] = []
    writer = _BatchWriter(alias=alias, repository_id=str(repository.id))

    def flush() -> None:
        if batch:
            writer.put(list(batch))
            batch.clear()
        summary.chunks_written = writer.written
        summary.files_indexed = writer.files

    try:
        for walked in walk.files:
            summary.files_done += 1
            if not _utf8(walked.relative_path):
                # PostgreSQL text is UTF-8: one such name would fail its batch.
                skipped["invalid_name"] += 1
                reporter(summary)
                continue
            previous = known.get(walked.relative_path)
            if (
                previous is not None
                and not force_reindex
                and previous["analysis_version"] == ANALYSIS_VERSION
                and previous["size_bytes"] == walked.size
                and previous["mtime"] == walked.mtime
            ):
                # Same size and mtime as last time: trust it, as git does.
                seen.add(walked.relative_path)
                summary.files_unchanged += 1
                reporter(summary)
                continue
            raw, text, reason, status = _read_text(
                walked.path, max_bytes=settings.INDEX_MAX_FILE_BYTES
            )
            if reason is not None:
                skipped[reason] += 1
                reporter(summary)
                continue
            # Store the size and mtime of the bytes read, not of the walk: a
            # file changed in between must look changed to the next run.
            walked = replace(walked, size=status.st_size, mtime=status.st_mtime)
            seen.add(walked.relative_path)
            sha = hashlib.sha256(raw).hexdigest()
            if (
                previous is not None
                and not force_reindex
                and previous["analysis_version"] == ANALYSIS_VERSION
                and previous["sha256"] == sha
            ):
                unchanged_mtime.append((previous["id"], walked.mtime))
                summary.files_unchanged += 1
                reporter(summary)
                continue
            language = language_for_path(walked.relative_path) or "text"
            try:
                analysis = file_analyse(
                    text=text,
                    language=language,
                    max_chars=settings.INDEX_CHUNK_MAX_CHARS,
                )
            except Exception:  # a chunker bug must cost one file, not the run
                logger.warning(
                    "chunking %s failed", walked.relative_path, exc_info=True
                )
                skipped["chunking_failed"] += 1
                continue
            batch.append(
                _PendingFile(
                    walked=walked,
                    sha256=sha,
                    language=language,
                    rows=_chunk_rows(
                        relative_path=walked.relative_path, chunks=analysis.chunks
                    ),
                    existing_id=previous["id"] if previous else None,
                    definitions=analysis.definitions,
                    references=analysis.references,
                )
            )
            if len(batch) >= FILES_PER_TRANSACTION:
                flush()
            reporter(summary)
        flush()
    finally:
        writer.close()
    summary.chunks_written = writer.written
    summary.files_indexed = writer.files

    for file_id, mtime in unchanged_mtime:
        CodeFile.objects.using(alias).filter(id=file_id).update(mtime=mtime)
    # Deletions last: a renamed file's old chunks lent their vectors above.
    gone = [row["id"] for path, row in known.items() if path not in seen]
    if gone:
        CodeFile.objects.using(alias).filter(id__in=gone).delete()
    summary.files_deleted = len(gone)
    if writer.files + len(gone) >= ANALYZE_AFTER_FILES:
        # Planner statistics for the navigation tables: without them a fresh
        # project's lookups are planned as if the tables were a tenth their
        # size (hash joins over whole tables). Small runs leave it to autovacuum.
        with project_connection(database_name=alias).cursor() as cursor:
            cursor.execute("ANALYZE code_files, code_symbols, code_references")
    summary.skipped_by_reason = dict(sorted(skipped.items()))
    summary.files_skipped = sum(skipped.values())
    summary.chunks_total = (
        CodeChunk.objects.using(alias).filter(repository=repository).count()
    )
    Repository.objects.using(alias).filter(id=repository.id).update(
        last_indexed_at=timezone.now()
    )
    reporter(summary, force=True)
    return summary


def chunk_vectors(
    *, embedder: Embedder, contents: Sequence[str], symbols: Sequence[str | None]
) -> np.ndarray:
    """Return the search vectors of chunks: their code, leaning towards their name.

    A question names what a function does, and a function's name is the one
    line of its code written to say that. A named chunk is embedded as its
    name's words over its code (`billing fetch invoice` + newline + code),
    and the name's own vector is mixed in at SYMBOL_VECTOR_WEIGHT, so a long
    body cannot drown the name out. bench/quality.py, semantic mode, MRR@10
    (docstring / hand-written): code alone 0.428 / 0.194; code + name vector
    0.471 / 0.220; name words over the code + name vector 0.491 / 0.251.
    Chunks without a symbol (windows, module code), or a weight of 0, keep
    their bare code vector.
    """
    weight = float(settings.SYMBOL_VECTOR_WEIGHT)
    words = [symbol_words(symbol=symbol) if weight > 0 else "" for symbol in symbols]
    texts = [
        f"{name}\n{content}" if name else content
        for name, content in zip(words, contents, strict=True)
    ]
    vectors = embedder.embed_documents(texts)
    named = sorted({text for text in words if text})
    if not named:
        return vectors
    by_name = dict(zip(named, embedder.embed_documents(named), strict=True))
    mixed = np.array(vectors, dtype=np.float32, copy=True)
    for row, text in enumerate(words):
        if text:
            mixed[row] = (1 - weight) * vectors[row] + weight * by_name[text]
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


def chunks_embed(
    *,
    alias: str,
    embedder: Embedder,
    dimension: int,
    progress: IndexProgress | None = None,
    reporter: _Reporter | None = None,
    batch_size: int = EMBED_BATCH,
) -> int:
    """Embed every chunk of the project that has no vector yet; return how many.

    Each batch is committed on its own, so an interrupted run loses at most one
    batch and the next run continues from there.
    """
    progress = progress or IndexProgress()
    reporter = reporter or _Reporter(None)
    pending = CodeChunk.objects.using(alias).filter(embedding__isnull=True)
    progress.phase = "embedding"
    progress.chunks_to_embed = pending.count()
    reporter(progress, force=True)
    done = 0
    last_id = 0
    connection = project_connection(database_name=alias)
    while True:
        rows = list(
            pending.filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", "content", "symbol")[:batch_size]
        )
        if not rows:
            break
        last_id = rows[-1][0]
        vectors = chunk_vectors(
            embedder=embedder,
            contents=[content for _, content, _ in rows],
            symbols=[symbol for _, _, symbol in rows],
        )
        texts = ["[" + ",".join(f"{x:.7g}" for x in vector) + "]" for vector in vectors]
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE code_chunks AS c SET embedding = v.embedding::vector "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(id, embedding) "
                "WHERE c.id = v.id AND c.embedding IS NULL",
                [[row[0] for row in rows], texts],
            )
        done += len(rows)
        progress.chunks_embedded = done
        reporter(progress)
    embedding_index_ensure(alias=alias, dimension=dimension)
    reporter(progress, force=True)
    return done
