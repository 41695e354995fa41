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
import stat
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from indexing.chunking import language_for_path
from indexing.embedders import Embedder, embedder_get
from indexing.exceptions import (
    EmbeddingModelMismatch,
    IndexingInProgress,
    RepositoryPathInvalid,
    UnknownRepository,
)
from indexing.freshness import freshness_forget
from indexing.gitstate import git_head
from indexing.models import CodeChunk, CodeFile, EmbeddingSpace, Repository
from indexing.parsing import ParsedFile, ParsePipeline, ParseTask
from indexing.selectors import repository_find, space_embedder_get
from indexing.storing import ANALYSIS_VERSION, BatchWriter, PendingFile
from indexing.terms import symbol_words
from indexing.walking import (
    OPEN_FLAGS,
    WalkedFile,
    WalkResult,
    path_examine,
    repository_walk,
)
from registry.databases import project_connection, repository_lock_key
from registry.models import Project
from registry.services import project_alias

logger = logging.getLogger("codebase_mcp.indexing")

FILES_PER_TRANSACTION = 64
# A run that writes or deletes this many files refreshes planner statistics.
ANALYZE_AFTER_FILES = 50
EMBED_BATCH = 256
# Embedding speed is reported over this window (IndexProgress.embed_rate).
RATE_WINDOW_SECONDS = 30.0
# How often a run polls for the batches other workers hold.
EMBED_WAIT_SECONDS = 0.2


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
    # Embedding phase: chunks/s over the last RATE_WINDOW_SECONDS, and the
    # seconds left at that speed (None until a batch has finished).
    embed_rate: float = 0.0
    eta_seconds: float | None = None


@dataclass
class IndexSummary(IndexProgress):
    """What a finished run did."""

    repository_id: str = ""
    repository_path: str = ""
    seconds: float = 0.0
    store_seconds: float = 0.0
    embed_seconds: float = 0.0
    embedding_model: str = ""
    # Named paths (a run with `paths`) left out, each with the walk's reason.
    paths_refused: dict[str, str] = field(default_factory=dict)
    # The git HEAD a full run read when it started (None outside git).
    git_commit: str | None = None
    git_branch: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


ProgressCallback = Callable[[IndexProgress], None]
# Hands id ranges of chunks to embed to other workers (indexing.jobs, Celery).
BatchSender = Callable[[list[tuple[int, int]]], None]


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
                "(or set EMBEDDING_BACKEND, MINILM_WEIGHTS or MINILM_MAX_TOKENS "
                "back to what made its vectors)."
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


# Fewer vectors than this build without parallel workers: starting them and
# sharing the graph costs more than it saves on a small index.
HNSW_PARALLEL_MIN_VECTORS = 20_000


def hnsw_build_settings(
    *, vectors: int | None = None, dimension: int = 384
) -> dict[str, str]:
    """Return the session settings an HNSW build of `vectors` vectors runs with.

    Memory for the whole graph (a graph that spills builds several times
    slower) up to HNSW_BUILD_MEMORY_MB, and HNSW_BUILD_WORKERS parallel
    workers for a large index. A parallel build sets aside its whole
    maintenance_work_mem up front, so a small index asks only for what it
    needs: a watcher's batch must not wait for gigabytes to be zeroed.
    Without a count, the configured maximum.
    """
    cap = int(settings.HNSW_BUILD_MEMORY_MB)
    if vectors is None:
        memory, workers = cap, int(settings.HNSW_BUILD_WORKERS)
    else:
        # A halfvec element and its neighbour lists, with a quarter to spare.
        need = vectors * (2 * int(dimension) + 600) * 5 // 4 // (1024 * 1024)
        memory = min(cap, max(64, need))
        parallel = vectors >= HNSW_PARALLEL_MIN_VECTORS
        workers = int(settings.HNSW_BUILD_WORKERS) if parallel else 0
    return {
        "maintenance_work_mem": f"{memory}MB",
        "max_parallel_maintenance_workers": str(workers),
    }


def embedding_index_ensure(
    *, alias: str, dimension: int, build_settings: dict[str, str] | None = None
) -> None:
    """Build the HNSW cosine index over the project's vectors if it is missing.

    The build runs with `build_settings` (default: hnsw_build_settings() for
    the vectors there are) set for this session and put back afterwards, so
    a pooled connection does not keep gigabytes of maintenance memory.
    """
    dimension = int(dimension)
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            [f"code_chunks_embedding_hnsw_{dimension}"],
        )
        if cursor.fetchone()[0]:
            return
        if build_settings is None:
            cursor.execute(
                "SELECT count(*) FROM code_chunks WHERE embedding IS NOT NULL"
            )
            build_settings = hnsw_build_settings(
                vectors=cursor.fetchone()[0], dimension=dimension
            )
        try:
            for name, value in build_settings.items():
                cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS code_chunks_embedding_hnsw_{dimension} "
                f"ON code_chunks USING hnsw ((embedding::halfvec({dimension})) "
                "halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
        finally:
            for name in build_settings:
                cursor.execute(f"RESET {name}")


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
    paths: Sequence[str] | None = None,
    embed_backlog: bool | None = None,
    embed_sender: BatchSender | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> IndexSummary:
    """Index (or re-index incrementally) a repository into a project.

    With `paths` (relative to the repository, or absolute under it) only
    those files are looked at, without walking the repository: changed or
    new ones are indexed, missing ones removed, and one the walk would skip
    (ignored, vendored, binary...) is removed too and named in
    `paths_refused` with the reason. Same transactions, lock and vector
    reuse as a full run.

    `embed_backlog` (default: only without `paths`): embed every chunk of
    the project that lacks a vector, not only those this run wrote. A
    refresh after an edit must not wait for the vectors of a project that
    was indexed for keywords only (20 minutes for 175k chunks).

    `embed_sender` hands the embedding batches to other workers as well
    (chunks_embed); `on_batch` is told what each of this run's batches wrote.

    Raise RepositoryPathInvalid for a bad path, IndexingInProgress when another
    run holds the same project and repository, EmbeddingModelMismatch when the
    project holds vectors of another model (unless `reembed`).
    """
    started = time.monotonic()
    root = repository_path_validate(repo_path=repo_path)
    named = None if paths is None else _paths_relative(root=root, paths=paths)
    alias = project_alias(project=project)
    connection = project_connection(database_name=alias)
    connection.ensure_connection()
    key = repository_lock_key(str(root))
    # Wait a moment before refusing: a run that just ended (or a client
    # that just disconnected) releases its lock when its backend exits,
    # which PostgreSQL does after the client has gone.
    deadline = time.monotonic() + settings.INDEX_LOCK_WAIT_SECONDS
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            locked = cursor.fetchone()[0]
            if locked or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    if not locked:
        raise IndexingInProgress(
            f"{root} is being indexed into project {project.name!r} by another run; "
            "wait for it to finish (get_indexing_status / manage.py index shows it)."
        )
    if embed_backlog is None:
        embed_backlog = paths is None
    try:
        # Chunk ids come from a sequence: what this run writes lies above.
        written_after = (
            None
            if embed_backlog
            else CodeChunk.objects.using(alias).aggregate(m=Max("id"))["m"] or 0
        )
        if embedder is None and embed:
            embedder = embedder_get() if reembed else space_embedder_get(alias=alias)
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
            named=named,
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
                after_id=written_after,
                sender=embed_sender,
                on_batch=on_batch,
            )
            summary.embed_seconds = time.monotonic() - embed_started
        summary.phase = "completed"
        summary.seconds = time.monotonic() - started
        freshness_forget(alias=alias)
        if progress:
            progress(summary)
        return summary
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except Exception:  # the lock dies with the connection anyway
            logger.debug("advisory unlock failed", exc_info=True)


@dataclass(frozen=True)
class _Unparsed:
    """A file read and found changed, waiting for its parse to come back."""

    walked: WalkedFile
    sha256: str
    language: str
    existing_id: int | None
    text: str = ""


def _store_phase(
    *,
    project: Project,
    alias: str,
    root: Path,
    force_reindex: bool,
    reporter: _Reporter,
    named: list[str] | None = None,
) -> IndexSummary:
    repository, _ = Repository.objects.using(alias).get_or_create(
        path=str(root), defaults={"name": root.name}
    )
    summary = IndexSummary(repository_id=str(repository.id), repository_path=str(root))
    if named is None:
        # Read before the walk: the files then are this commit's or newer.
        head = git_head(root=str(root))
        if head is not None:
            summary.git_commit, summary.git_branch = head.commit, head.branch
        walk = repository_walk(
            root=str(root),
            max_file_bytes=settings.INDEX_MAX_FILE_BYTES,
            languages=language_for_path,
        )
    else:
        walk = _paths_walk(root=root, named=named, summary=summary)
    skipped: Counter[str] = Counter(walk.skipped)
    summary.files_total = len(walk.files)
    summary.phase = "storing"
    reporter(summary, force=True)

    files = CodeFile.objects.using(alias).filter(repository=repository)
    if named is not None:
        files = files.filter(relative_path__in=named)
    known = {
        row["relative_path"]: row
        for row in files.values(
            "id", "relative_path", "sha256", "size_bytes", "mtime", "analysis_version"
        )
    }
    seen: set[str] = set()
    batch: list[PendingFile] = []
    unchanged_mtime: list[tuple[int, float]] = []
    writer = BatchWriter(alias=alias, repository_id=str(repository.id))

    parser: ParsePipeline[_Unparsed] = ParsePipeline(
        workers=settings.INDEX_PARSE_WORKERS,
        start_after=settings.INDEX_PARSE_PROCESS_AFTER_FILES,
    )

    def flush() -> None:
        if batch:
            writer.put(list(batch))
            batch.clear()
        summary.chunks_written = writer.written
        summary.files_indexed = writer.files

    def take(parsed: Iterable[tuple[_Unparsed, ParsedFile]]) -> None:
        for file, outcome in parsed:
            if outcome.failed:
                skipped["chunking_failed"] += 1
                continue
            batch.append(
                PendingFile(
                    walked=file.walked,
                    sha256=file.sha256,
                    language=file.language,
                    rows=outcome.rows,
                    existing_id=file.existing_id,
                    definitions=outcome.definitions,
                    reference_rows=outcome.reference_rows,
                    text=file.text,
                )
            )
            if len(batch) >= FILES_PER_TRANSACTION:
                flush()

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
            parser.put(
                _Unparsed(
                    walked, sha, language, previous["id"] if previous else None, text
                ),
                ParseTask(
                    relative_path=walked.relative_path,
                    text=text,
                    language=language,
                    max_chars=settings.INDEX_CHUNK_MAX_CHARS,
                ),
            )
            take(parser.ready())
            reporter(summary)
        take(parser.drain())
        flush()
    finally:
        parser.close()
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
        # New texts wait in the trigram index's pending list, which every
        # grep_code lookup scans in full (1.4 ms instead of 0.07 on Django)
        # until it is merged.
        with project_connection(database_name=alias).cursor() as cursor:
            cursor.execute(
                "ANALYZE code_files, code_symbols, code_references, code_text_segments"
            )
            cursor.execute(
                "SELECT gin_clean_pending_list('code_text_segments_trgm'), "
                "gin_clean_pending_list('code_text_segments_joined_trgm')"
            )
    summary.skipped_by_reason = dict(sorted(skipped.items()))
    summary.files_skipped = sum(skipped.values())
    summary.chunks_total = (
        CodeChunk.objects.using(alias).filter(repository=repository).count()
    )
    recorded: dict = {"last_indexed_at": timezone.now()}
    if named is None:
        # A run of some files leaves the index at the commit it was at.
        recorded |= {
            "indexed_commit": summary.git_commit or "",
            "indexed_branch": summary.git_branch or "",
        }
    Repository.objects.using(alias).filter(id=repository.id).update(**recorded)
    reporter(summary, force=True)
    return summary


def repositories_refresh(
    *,
    project: Project,
    repository: str | None = None,
    paths: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> list[IndexSummary]:
    """Bring the index up to date with the files on disk; return a summary per repository.

    Every indexed repository of the project, or the one named (id, path or
    name). An unchanged file costs a stat, a changed one a re-analysis
    (vectors reused by content), a deleted one its rows. With `paths`, only
    those files are looked at (absolute paths pick their repository). Only
    the chunks it writes are embedded: a backlog of chunks without vectors
    is an index run's work, not an edit's.
    """
    alias = project_alias(project=project)
    if repository is not None:
        chosen = [repository_find(alias=alias, reference=repository)]
    else:
        chosen = list(Repository.objects.using(alias).order_by("path"))
    if not chosen:
        raise UnknownRepository(
            f"Project {project.name!r} has no indexed repository yet; index one "
            "first (index_repository, or manage.py index PATH)."
        )
    groups: dict[str, list[str] | None] = {r.path: None for r in chosen}
    if paths is not None:
        groups = {r.path: [] for r in chosen}
        for given in paths:
            owner = _path_owner(given=given, roots=list(groups))
            groups[owner].append(given)
        groups = {root: named for root, named in groups.items() if named}
    return [
        repository_index(
            project=project,
            repo_path=root,
            paths=named,
            progress=progress,
            embed_backlog=False,
        )
        for root, named in groups.items()
    ]


def _path_owner(*, given: object, roots: list[str]) -> str:
    """Return the repository root a named path belongs to."""
    if isinstance(given, str) and os.path.isabs(given):
        resolved = os.path.realpath(given)
        for root in sorted(roots, key=len, reverse=True):
            if resolved == root or resolved.startswith(root.rstrip(os.sep) + os.sep):
                return root
        raise RepositoryPathInvalid(
            f"{given} is in none of the indexed repositories ({', '.join(roots)}); "
            "index its repository first."
        )
    if len(roots) != 1:
        raise RepositoryPathInvalid(
            f"{given!r} is relative and the project has {len(roots)} repositories; "
            "name the repository, or give absolute paths."
        )
    return roots[0]


def _paths_relative(*, root: Path, paths: Sequence[str]) -> list[str]:
    """Return the named paths relative to `root` (POSIX), or raise RepositoryPathInvalid."""
    if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
        raise RepositoryPathInvalid("paths must be a list of file paths.")
    out: list[str] = []
    for given in paths:
        if not given.strip() or "\x00" in given or not _utf8(given):
            raise RepositoryPathInvalid(
                f"{given!r} is not a usable file path; give paths relative to "
                f"{root} or absolute under it."
            )
        path = Path(os.path.expanduser(given.strip()))
        absolute = Path(os.path.normpath(path if path.is_absolute() else root / path))
        if absolute.parent.exists():
            # The root is resolved; resolve the directory part the same way
            # (the file itself may be a link, or gone).
            absolute = absolute.parent.resolve() / absolute.name
        try:
            relative = absolute.relative_to(root)
        except ValueError:
            raise RepositoryPathInvalid(
                f"{given} is outside the repository {root}; give paths inside it."
            ) from None
        if not relative.parts:
            raise RepositoryPathInvalid(
                f"{given} is the repository itself; name files inside it, or "
                "refresh without paths."
            )
        out.append(relative.as_posix())
    return list(dict.fromkeys(out))


def _paths_walk(*, root: Path, named: list[str], summary: IndexSummary) -> WalkResult:
    """Examine the named files alone, as the walk would; note each refused one."""
    files: list[WalkedFile] = []
    skipped: Counter[str] = Counter()
    for relative in named:
        outcome = path_examine(
            root=str(root),
            relative_path=relative,
            max_file_bytes=settings.INDEX_MAX_FILE_BYTES,
            languages=language_for_path,
        )
        if isinstance(outcome, WalkedFile):
            files.append(outcome)
        elif outcome != "missing":
            skipped[outcome] += 1
            summary.paths_refused[relative] = outcome
    return WalkResult(files=files, skipped=skipped)


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


class EmbedRate:
    """Chunks per second over the last RATE_WINDOW_SECONDS, and the time left.

    A window rather than the whole phase: a run that started on a busy
    machine, or gained a worker, shows the speed it goes at now. The window
    opens when the first batch ends, not when the phase starts: the first
    batch also loads the model (3 s for MiniLM), which would make the first
    estimates several times too long.
    """

    def __init__(self, *, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def update(self, progress: IndexProgress) -> None:
        """Record the progress's embedded count; set its embed_rate and eta_seconds."""
        now = time.monotonic()
        if progress.chunks_embedded >= progress.chunks_to_embed:
            progress.eta_seconds = 0.0
        if not self.samples or self.samples[0][1] == 0:
            # Until a first batch has ended, only its end is worth keeping.
            self.samples.clear()
            self.samples.append((now, progress.chunks_embedded))
            return
        self.samples.append((now, progress.chunks_embedded))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        first_at, first_done = self.samples[0]
        elapsed = now - first_at
        if elapsed < 0.5 or progress.chunks_embedded <= first_done:
            return
        progress.embed_rate = (progress.chunks_embedded - first_done) / elapsed
        left = max(0, progress.chunks_to_embed - progress.chunks_embedded)
        progress.eta_seconds = left / progress.embed_rate


def embed_ranges(
    *, alias: str, after_id: int | None = None, batch_size: int = EMBED_BATCH
) -> list[tuple[int, int]]:
    """Cut the project's chunks without a vector into id ranges of batch_size chunks."""
    pending = CodeChunk.objects.using(alias).filter(embedding__isnull=True)
    if after_id is not None:
        pending = pending.filter(id__gt=after_id)
    ids = list(pending.order_by("id").values_list("id", flat=True))
    return [
        (ids[start], ids[min(start + batch_size, len(ids)) - 1])
        for start in range(0, len(ids), batch_size)
    ]


def chunk_batch_embed(
    *, alias: str, embedder: Embedder, first_id: int, last_id: int
) -> int:
    """Embed the chunks of an id range that still lack a vector; return how many written.

    Safe to run any number of times, on any number of workers at once: the
    rows are locked for the batch (FOR UPDATE SKIP LOCKED, so a second worker
    on the same range takes only what nobody holds), and a vector is written
    only where there is none. A worker that dies mid-batch rolls back, and
    its rows are free for the next one.
    """
    space = EmbeddingSpace.objects.using(alias).first()
    if space is None or space.model_id != embedder.model_id:
        raise EmbeddingModelMismatch(
            f"This worker embeds with {embedder.model_id} but the project's "
            f"vectors are {space.model_id if space else 'not set up yet'}; every "
            "worker must run the same EMBEDDING_BACKEND and model settings."
        )
    connection = project_connection(database_name=alias)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, content, symbol FROM code_chunks WHERE id BETWEEN %s AND %s "
            "AND embedding IS NULL ORDER BY id FOR UPDATE SKIP LOCKED",
            [first_id, last_id],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        vectors = chunk_vectors(
            embedder=embedder,
            contents=[content for _, content, _ in rows],
            symbols=[symbol for _, _, symbol in rows],
        )
        texts = ["[" + ",".join(f"{x:.7g}" for x in vector) + "]" for vector in vectors]
        cursor.execute(
            "UPDATE code_chunks AS c SET embedding = v.embedding::halfvec "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, embedding) "
            "WHERE c.id = v.id AND c.embedding IS NULL",
            [[row[0] for row in rows], texts],
        )
        return cursor.rowcount


def chunks_embed(
    *,
    alias: str,
    embedder: Embedder,
    dimension: int,
    progress: IndexProgress | None = None,
    reporter: _Reporter | None = None,
    batch_size: int | None = None,
    after_id: int | None = None,
    sender: BatchSender | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Embed every chunk of the project that has no vector yet; return how many.

    With `after_id`, only the chunks above it (those a run wrote after it
    read that id). Each batch is committed on its own, so an interrupted run
    loses at most one batch and the next run continues from there.

    With `sender`, the batches are also handed to other workers: this run
    takes them from the last while workers take them from the first, then
    waits for the batches others hold, and embeds itself any batch a worker
    dropped (died, or never came). Progress counts every worker's vectors.
    `on_batch` is told how many vectors each of this run's batches wrote.
    """
    progress = progress or IndexProgress()
    reporter = reporter or _Reporter(None)
    batch_size = batch_size or settings.INDEX_EMBED_BATCH
    ranges = embed_ranges(alias=alias, after_id=after_id, batch_size=batch_size)
    pending = CodeChunk.objects.using(alias).filter(embedding__isnull=True)
    if ranges:
        pending = pending.filter(id__gte=ranges[0][0], id__lte=ranges[-1][1])
    progress.phase = "embedding"
    progress.chunks_to_embed = pending.count() if ranges else 0
    progress.chunks_embedded = 0
    progress.embed_rate = 0.0
    progress.eta_seconds = None
    rate = EmbedRate()
    rate.update(progress)
    reporter(progress, force=True)
    done = 0

    def observe(written: int) -> None:
        if on_batch is not None and written:
            on_batch(written)

    def count_others() -> None:
        left = pending.count()
        progress.chunks_embedded = progress.chunks_to_embed - left
        rate.update(progress)
        reporter(progress)

    if sender is None:
        for first_id, last_id in ranges:
            written = chunk_batch_embed(
                alias=alias, embedder=embedder, first_id=first_id, last_id=last_id
            )
            observe(written)
            done += written
            progress.chunks_embedded = done
            rate.update(progress)
            reporter(progress)
    elif ranges:
        sender(ranges)
        for first_id, last_id in reversed(ranges):
            if not pending.filter(id__gte=first_id, id__lte=last_id).exists():
                # Workers got here first: every range below is theirs too.
                break
            written = chunk_batch_embed(
                alias=alias, embedder=embedder, first_id=first_id, last_id=last_id
            )
            observe(written)
            done += written
            count_others()
        # What is left is held by other workers, or was dropped by one that
        # died; a dropped batch's rows are unlocked, so embedding "what is
        # free" takes only those.
        while pending.exists():
            taken = 0
            for first_id, last_id in ranges:
                if pending.filter(id__gte=first_id, id__lte=last_id).exists():
                    written = chunk_batch_embed(
                        alias=alias,
                        embedder=embedder,
                        first_id=first_id,
                        last_id=last_id,
                    )
                    observe(written)
                    taken += written
            done += taken
            count_others()
            if not taken:
                time.sleep(EMBED_WAIT_SECONDS)
        progress.chunks_embedded = progress.chunks_to_embed
    progress.eta_seconds = 0.0
    embedding_index_ensure(alias=alias, dimension=dimension)
    reporter(progress, force=True)
    return progress.chunks_embedded
