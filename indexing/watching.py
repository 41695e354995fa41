"""Follow repositories on disk and keep their index fresh.

A watcher holds, for each repository it follows, a session advisory lock on
the project's database (key `indexing.freshness.watcher_lock_key`), so a
second watcher of the same repository keeps out and project status can tell
from `pg_locks` that one is running. Two threads share the work:

- the listener waits on watchfiles (inotify underneath) and files each event
  under its repository: a path to re-index, or a whole incremental run (a
  branch switch, changed ignore rules, a directory moved in or out);
- the indexer takes everything pending at once, one `repository_index` per
  repository, so events that arrive while a batch is being indexed coalesce
  into the next batch instead of queueing up one run each.

On start each repository gets one incremental run (a stat scan): the catch-up
with whatever changed while no watcher ran.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string
from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from indexing.exceptions import (
    IndexingError,
    IndexingInProgress,
    RepositoryPathInvalid,
    WatchRefused,
)
from indexing.freshness import watcher_lock_key
from indexing.models import CodeFile, Repository
from indexing.services import IndexSummary, repository_index, repository_path_validate
from registry.databases import project_session_open
from registry.models import Project
from registry.services import project_alias

logger = logging.getLogger("codebase_mcp.watching")

# watchfiles closes a batch once no event came for STEP_MS, or DEBOUNCE_MS
# after its first event while events keep coming. An editor's save (write,
# or write-temp-then-rename) is over within a few ms and a `git checkout` or
# a formatter writes its files back to back, so 100 ms of quiet ends each
# of them as one batch, and keeps the edit-to-searchable time well under a
# second; the 1.6 s cap (watchfiles' default) bounds the wait during a storm
# that never pauses, whose later events coalesce while the first batch is
# indexed.
STEP_MS = 100
DEBOUNCE_MS = 1600
# How long the listener blocks in Rust before looking at its stop flag.
TIMEOUT_MS = 500
# A repository whose run was refused (another run holds it) is tried again.
RETRY_SECONDS = 1.0

# Directories and names no walk ever indexes: dropped before they cost a
# lookup. Everything else is judged by path_examine inside the fast path.
NOISE_DIRECTORIES = frozenset(
    {
        "__pycache__",
        ".hg",
        ".svn",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".hypothesis",
    }
)
NOISE_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".swo", "~")
# Vim writes and deletes a file named 4913 to test that a directory is writable.
NOISE_NAMES = frozenset({"4913", ".DS_Store"})
RULE_FILES = frozenset({".gitignore"})
RULE_PATHS = frozenset({".git/info/exclude", ".codebase-mcp/ignore"})
PATHS_SHOWN = 3


@dataclass(frozen=True)
class WatchNote:
    """One thing the watcher has to say: a batch it indexed, or a problem."""

    level: str  # "batch" | "info" | "error"
    text: str


Reporter = Callable[[WatchNote], None]
# Hands one batch to someone else (a Celery task) instead of indexing it here.
Sender = Callable[..., None]


@dataclass
class _Pending:
    """What waits to be indexed in one repository."""

    paths: set[str] = field(default_factory=set)
    full: str | None = None  # why a whole incremental run is needed


class RepositoryWatcher:
    """Watch some repositories of a project; see the module docstring."""

    def __init__(
        self,
        *,
        project: Project,
        roots: Sequence[str],
        report: Reporter,
        sender: Sender | None = None,
    ) -> None:
        self.project = project
        self.report = report
        self.sender = sender
        self.roots: list[str] = list(roots)
        self.stopping = threading.Event()
        # Set to make the listener start again with the repositories left.
        self.rewatch = threading.Event()
        self._pending: dict[str, _Pending] = {}
        self._wake = threading.Condition()
        self._session: psycopg.Connection | None = None
        self._listener: threading.Thread | None = None
        # Worktrees: root -> (its git directory, the shared refs/heads).
        self._git_dirs: dict[str, tuple[str, str]] = {}

    # Locks -----------------------------------------------------------------

    def lock(self) -> None:
        """Take the watch lock of every repository; keep out of those taken.

        Raise WatchRefused when another watcher holds all of them.
        """
        self._session = project_session_open(
            database_name=self.project.database_name,
            server=self.project.server,
            login=self.project.database_login,
        )
        kept = []
        for root in self.roots:
            row = self._session.execute(
                "SELECT pg_try_advisory_lock(%s)", [watcher_lock_key(root=root)]
            ).fetchone()
            if row[0]:
                kept.append(root)
            else:
                self.report(
                    WatchNote(
                        "error",
                        f"{root} is already watched by another watcher of project "
                        f"{self.project.name!r}; this one leaves it alone.",
                    )
                )
        self.roots = kept
        if not kept:
            self.unlock()
            raise WatchRefused(
                "Every repository named is already watched by another watcher "
                f"of project {self.project.name!r}; stop that one first, or "
                "leave it running."
            )

    def unlock(self) -> None:
        """Release the watch locks (closing the session releases them too)."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error:
            logger.debug("unlocking the watch locks failed", exc_info=True)
        finally:
            session.close()

    def _release(self, root: str) -> None:
        if self._session is None:
            return
        try:
            self._session.execute(
                "SELECT pg_advisory_unlock(%s)", [watcher_lock_key(root=root)]
            )
        except psycopg.Error:
            logger.debug("unlocking %s failed", root, exc_info=True)

    # Listening -------------------------------------------------------------

    def listen_start(self) -> None:
        """Install the file watches, then listen on a thread of its own."""
        notify = self._notify()
        self._listener = threading.Thread(
            target=self._listen, args=(notify,), name="watch-listener", daemon=True
        )
        self._listener.start()

    def _notify(self) -> RustNotify | None:
        # RustNotify (documented in watchfiles' API reference) rather than
        # watchfiles.watch(): its constructor returns once the watches are in
        # place, so "watching" is only said when it is true.
        roots = [root for root in self.roots if os.path.isdir(root)]
        if not roots:
            return None
        # A worktree's HEAD and refs live outside it: watch those too.
        self._git_dirs = {
            root: found for root in roots if (found := _outside_git_dirs(root))
        }
        extra = [
            path
            for git_dir, refs in self._git_dirs.values()
            for path in (git_dir, refs)
            if os.path.isdir(path)
        ]
        return RustNotify(roots + extra, False, False, 300, True, True)

    def _listen(self, notify: RustNotify | None) -> None:
        while not self.stopping.is_set():
            if notify is None:
                self.stopping.wait(TIMEOUT_MS / 1000)
                continue
            if self.rewatch.is_set():
                self.rewatch.clear()
                notify.close()
                notify = self._notify()
                continue
            try:
                raw = notify.watch(DEBOUNCE_MS, STEP_MS, TIMEOUT_MS, self.stopping)
            except Exception as exc:  # the Rust side failed: say so, start again
                self.report(WatchNote("error", f"file watching failed: {exc}"))
                self.stopping.wait(RETRY_SECONDS)
                self.rewatch.set()
                continue
            if isinstance(raw, set):
                self.events_file(events=[(Change(c), path) for c, path in raw])
        if notify is not None:
            notify.close()

    def events_file(self, *, events: Sequence[tuple[Change, str]]) -> None:
        """File events under their repositories, for the indexer to take."""
        routed: dict[str, _Pending] = {}
        for change, path in events:
            root = self._owner(path)
            if root is None:
                root = self._worktree_head_moved(path)
                if root is not None:
                    routed.setdefault(
                        root, _Pending()
                    ).full = "HEAD moved (branch switch)"
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            why = _event_route(root=root, relative=relative, change=change)
            if why is None:
                continue
            pending = routed.setdefault(root, _Pending())
            if why == "file":
                pending.paths.add(relative)
            else:
                pending.full = pending.full or why
        if routed:
            with self._wake:
                for root, pending in routed.items():
                    self._merge(root, pending)
                self._wake.notify()

    def full_queue(self, *, root: str, why: str) -> None:
        """Ask for an incremental run of a whole repository."""
        with self._wake:
            self._merge(root, _Pending(full=why))
            self._wake.notify()

    def _merge(self, root: str, pending: _Pending) -> None:
        known = self._pending.setdefault(root, _Pending())
        known.paths |= pending.paths
        known.full = known.full or pending.full

    def _worktree_head_moved(self, path: str) -> str | None:
        """Return the worktree whose HEAD, or the branch it names, `path` is."""
        for root, (git_dir, refs) in self._git_dirs.items():
            if path == os.path.join(git_dir, "HEAD"):
                return root
            if path.startswith(refs + os.sep):
                branch = _worktree_branch(git_dir)
                common = os.path.dirname(os.path.dirname(refs))
                if branch is not None and path == os.path.join(common, branch):
                    return root
        return None

    def _owner(self, path: str) -> str | None:
        for root in self.roots:
            if path == root or path.startswith(root + os.sep):
                return root
        return None

    # Indexing --------------------------------------------------------------

    def serve(self) -> None:
        """Index what is pending, batch after batch, until stop() is called."""
        while not self.stopping.is_set():
            with self._wake:
                if not self._pending:
                    self._wake.wait(TIMEOUT_MS / 1000)
                taken, self._pending = self._pending, {}
            for root, pending in taken.items():
                if self.stopping.is_set():
                    break
                if root in self.roots:
                    self._batch(root, pending)

    def _batch(self, root: str, pending: _Pending) -> None:
        try:
            if not os.path.isdir(root):
                self._drop(root)
                return
            if pending.full is None and self._directory_gone(root, pending.paths):
                pending.full = "a directory was moved or deleted"
            paths = None if pending.full else sorted(pending.paths)
            self._index(root, paths, pending.full or _paths_text(paths))
        except IndexingInProgress:
            # Another run (index, refresh, a task) holds the repository: the
            # files stay pending and coalesce with what comes next.
            with self._wake:
                self._merge(root, pending)
            self.stopping.wait(RETRY_SECONDS)
        except RepositoryPathInvalid as exc:
            if not os.path.isdir(root):
                self._drop(root)
            else:
                self.report(WatchNote("error", f"{root}: {exc}"))
        except IndexingError as exc:
            self.report(WatchNote("error", f"{root}: {exc}"))
        except Exception as exc:  # one bad batch must not end the watcher
            logger.warning("indexing a batch of %s failed", root, exc_info=True)
            self.report(WatchNote("error", f"{root}: indexing failed: {exc}"))
        finally:
            # This thread's connections go back to the pool between batches,
            # as Celery's fixup does around tasks.
            connections.close_all()

    def _index(self, root: str, paths: list[str] | None, what: str) -> None:
        if self.sender is not None:
            self.sender(project_id=str(self.project.id), repo_path=root, paths=paths)
            count = "the repository" if paths is None else f"{len(paths)} files"
            self.report(WatchNote("batch", f"{root}: {what}: queued {count}"))
            return
        # Only what this batch wrote is embedded: a project indexed for
        # keywords only must not hold every batch behind its backlog.
        summary = repository_index(
            project=self.project, repo_path=root, paths=paths, embed_backlog=False
        )
        if paths is None or summary.files_indexed or summary.files_deleted:
            self.report(WatchNote("batch", _summary_text(root, what, summary)))
        unreadable = summary.skipped_by_reason.get("unreadable", 0)
        if paths is None and unreadable:
            self.report(
                WatchNote(
                    "error",
                    f"{root}: {unreadable} paths could not be read (permission "
                    "denied, or a symlink that dangles or loops) and are not "
                    "indexed; the rest is watched.",
                )
            )
        for path, reason in sorted(summary.paths_refused.items()):
            logger.info("%s: not indexed: %s (%s)", root, path, reason)

    def _directory_gone(self, root: str, paths: set[str]) -> bool:
        """Return whether a vanished path held indexed files (a directory)."""
        vanished = [p for p in paths if not os.path.lexists(os.path.join(root, p))]
        if not vanished:
            return False
        alias = project_alias(project=self.project)
        files = CodeFile.objects.using(alias).filter(repository__path=root)
        known = set(
            files.filter(relative_path__in=vanished).values_list(
                "relative_path", flat=True
            )
        )
        return any(
            files.filter(relative_path__startswith=p + "/").exists()
            for p in vanished
            if p not in known
        )

    def _drop(self, root: str) -> None:
        self.report(
            WatchNote(
                "error",
                f"{root} no longer exists; it is not watched any more (its index "
                "stays until the repository is indexed or removed again).",
            )
        )
        self.roots = [r for r in self.roots if r != root]
        self._release(root)
        self.rewatch.set()
        if not self.roots:
            self.report(WatchNote("error", "No repository is left to watch."))
            self.stop()

    def stop(self) -> None:
        """Ask both threads to finish; the indexer ends after its batch."""
        self.stopping.set()
        with self._wake:
            self._wake.notify_all()

    def close(self) -> None:
        """Wait for the listener and release the locks."""
        self.stop()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self.unlock()


def _event_route(*, root: str, relative: str, change: Change) -> str | None:
    """Return "file", the reason for a whole run, or None to drop the event."""
    if relative == ".":
        return None if os.path.isdir(root) else "the repository vanished"
    parts = relative.split("/")
    if parts[0] == ".git":
        if relative in RULE_PATHS:
            return "ignore rules changed"
        if relative == ".git/HEAD" or (
            relative.startswith(".git/refs/heads/") and relative == _head_ref(root)
        ):
            return "HEAD moved (branch switch)"
        return None
    name = parts[-1]
    if (
        NOISE_DIRECTORIES.intersection(parts)
        or name in NOISE_NAMES
        or name.endswith(NOISE_SUFFIXES)
    ):
        return None
    if name in RULE_FILES or relative in RULE_PATHS:
        return "ignore rules changed"
    path = os.path.join(root, relative)
    if change == Change.added and os.path.isdir(path) and not os.path.islink(path):
        # A directory moved in brings files that raised no event of their own.
        return "a directory was added"
    if change != Change.deleted and os.path.isdir(path):
        return None
    return "file"


def _head_ref(root: str) -> str | None:
    """Return `.git/refs/heads/BRANCH` for the branch HEAD names, if any."""
    try:
        with open(os.path.join(root, ".git", "HEAD"), encoding="utf-8") as handle:
            head = handle.read(1024).strip()
    except (OSError, UnicodeDecodeError):
        return None
    if head.startswith("ref: "):
        return ".git/" + head[5:]
    return None


def _outside_git_dirs(root: str) -> tuple[str, str] | None:
    """Return (git directory, refs/heads) of a worktree whose `.git` is a file."""
    dot_git = os.path.join(root, ".git")
    if not os.path.isfile(dot_git):
        return None
    try:
        with open(dot_git, encoding="utf-8") as handle:
            line = handle.readline().strip()
        if not line.startswith("gitdir:"):
            return None
        git_dir = os.path.normpath(os.path.join(root, line[len("gitdir:") :].strip()))
        common = git_dir
        common_file = os.path.join(git_dir, "commondir")
        if os.path.isfile(common_file):
            with open(common_file, encoding="utf-8") as handle:
                common = os.path.normpath(os.path.join(git_dir, handle.read().strip()))
    except (OSError, UnicodeDecodeError):
        return None
    return git_dir, os.path.join(common, "refs", "heads")


def _worktree_branch(git_dir: str) -> str | None:
    """Return `refs/heads/BRANCH` for the branch a worktree's HEAD names, if any."""
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as handle:
            head = handle.read(1024).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return head[5:] if head.startswith("ref: refs/heads/") else None


def _paths_text(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:PATHS_SHOWN])
    more = len(paths) - PATHS_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def _summary_text(root: str, what: str, summary: IndexSummary) -> str:
    return (
        f"{root}: {what}: {summary.files_indexed} re-indexed, "
        f"{summary.files_deleted} removed, {summary.files_unchanged} unchanged "
        f"in {summary.seconds:.2f} s"
    )


def watch_roots(
    *, project: Project, paths: Sequence[str] | None, report: Reporter
) -> list[str]:
    """Return the repository roots to watch: the named ones, or every indexed one.

    A named path inside an indexed repository means that repository. A path
    outside the allowed roots (or missing) is reported and left out; raise
    WatchRefused when nothing is left.
    """
    alias = project_alias(project=project)
    indexed = list(
        Repository.objects.using(alias).order_by("path").values_list("path", flat=True)
    )
    if not paths:
        if not indexed:
            raise WatchRefused(
                f"Project {project.name!r} has no indexed repository to watch; "
                "index one first (manage.py index PATH), or name a path."
            )
        return indexed
    roots: list[str] = []
    for given in paths:
        try:
            resolved = str(repository_path_validate(repo_path=os.path.abspath(given)))
        except RepositoryPathInvalid as exc:
            report(WatchNote("error", f"not watched: {exc}"))
            continue
        owner = next(
            (
                root
                for root in sorted(indexed, key=len, reverse=True)
                if resolved == root or resolved.startswith(root + os.sep)
            ),
            resolved,
        )
        if owner not in roots:
            roots.append(owner)
    if not roots:
        raise WatchRefused("None of the paths named can be watched; see above.")
    return roots


def watch_sender() -> Sender | None:
    """Return what hands batches to Celery when CELERY_BROKER_URL is set."""
    if not settings.CELERY_BROKER_URL:
        return None
    return import_string(settings.WATCH_BATCH_SENDER)


def watcher_start(
    *,
    project: Project,
    paths: Sequence[str] | None = None,
    report: Reporter,
    sender: Sender | None = None,
) -> RepositoryWatcher:
    """Lock, start listening and queue the catch-up; return the watcher.

    Its `serve()` then indexes until `stop()`; `close()` releases everything.
    Raise WatchRefused when there is nothing this watcher may watch.
    """
    roots = watch_roots(project=project, paths=paths, report=report)
    watcher = RepositoryWatcher(
        project=project, roots=roots, report=report, sender=sender
    )
    watcher.lock()
    try:
        watcher.listen_start()
    except BaseException:
        watcher.close()
        raise
    for root in watcher.roots:
        watcher.full_queue(root=root, why="catch-up")
    return watcher


def watcher_background_start(
    *, project: Project, report: Reporter
) -> RepositoryWatcher:
    """Start a watcher of every indexed repository on a daemon thread.

    For a server process (runmcp): the caller calls `close()` on the way out.
    """
    watcher = watcher_start(project=project, report=report, sender=watch_sender())

    def serve() -> None:
        try:
            watcher.serve()
        finally:
            connections.close_all()

    threading.Thread(target=serve, name="watch-indexer", daemon=True).start()
    return watcher
