"""Walk a repository checkout and pick out the files worth indexing.

The walker honours git's ignore rules, prunes vendored and build directories,
and skips files that would only add noise to a code index (lock files, binaries,
minified bundles, generated code, oversized files). Every skipped path is counted
under a short reason so callers can explain what was left out.

This module is deliberately free of Django imports so it can run in worker
processes and tests without any settings configured.
"""

from __future__ import annotations

import collections
import errno
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass

from pathspec import GitIgnoreSpec

__all__ = ["WalkResult", "WalkedFile", "file_is_binary", "repository_walk"]

# Git reads this many bytes when deciding whether a blob is binary; matching it
# keeps our notion of "binary" aligned with what `git diff` shows.
BINARY_SNIFF_BYTES = 8192
# Minification and generated-code markers live at the top of a file, so a small
# window is enough and keeps the per-file cost flat.
CONTENT_SNIFF_BYTES = 4096
MINIFIED_LINE_CHARS = 1000
# Hand-written code averages well under 100 characters per line; a window that
# averages more than this is made of a few enormous lines.
MINIFIED_AVERAGE_LINE_CHARS = 200
GENERATED_MARKER_LINES = 10

GITIGNORE_NAME = ".gitignore"
# Project-specific ignore file, read from the repository root only.
TOOL_DIRECTORY_NAME = ".codebase-mcp"
TOOL_IGNORE_NAME = "ignore"

# Version-control metadata is never repository content, so it is skipped
# silently rather than counted.
VCS_DIRECTORY_NAMES = frozenset({".git", ".hg", ".svn", ".bzr"})

VENDORED_DIRECTORY_NAMES = frozenset(
    {
        # JavaScript
        "node_modules",
        "bower_components",
        "jspm_packages",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".parcel-cache",
        ".turbo",
        ".angular",
        # Python
        ".venv",
        "venv",
        "site-packages",
        "__pypackages__",
        "__pycache__",
        ".eggs",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "htmlcov",
        # Build output and third-party code in other ecosystems
        "dist",
        "build",
        "target",
        "vendor",
        "Pods",
        "Carthage",
        "DerivedData",
        ".gradle",
        ".terraform",
        # Editor state
        ".idea",
    }
)
# Any directory holding this file is a Python virtual environment, whatever its
# name; this is how `env/` is told apart from an ordinary source directory.
VIRTUALENV_MARKER = "pyvenv.cfg"

LOCK_FILE_NAMES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
        "bun.lockb",
        "deno.lock",
        "poetry.lock",
        "Pipfile.lock",
        "pdm.lock",
        "uv.lock",
        "conda-lock.yml",
        "Cargo.lock",
        "Gemfile.lock",
        "composer.lock",
        "go.sum",
        "flake.lock",
        "mix.lock",
        "pubspec.lock",
        "Podfile.lock",
        "Package.resolved",
        "Cartfile.resolved",
        "packages.lock.json",
        "gradle.lockfile",
    }
)

BINARY_EXTENSIONS = frozenset(
    {
        # Images
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".icns",
        ".webp",
        ".avif",
        ".heic",
        ".tif",
        ".tiff",
        ".psd",
        # Fonts
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".eot",
        # Audio and video
        ".mp3",
        ".mp4",
        ".m4a",
        ".wav",
        ".flac",
        ".ogg",
        ".avi",
        ".mov",
        ".mkv",
        ".webm",
        # Archives and packages
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".tar",
        ".jar",
        ".war",
        ".whl",
        ".egg",
        ".apk",
        ".dmg",
        ".iso",
        ".deb",
        ".rpm",
        # Compiled code
        ".pyc",
        ".pyo",
        ".pyd",
        ".so",
        ".dylib",
        ".dll",
        ".exe",
        ".o",
        ".a",
        ".lib",
        ".obj",
        ".class",
        ".wasm",
        ".beam",
        # Data, databases and model weights
        ".bin",
        ".sqlite",
        ".sqlite3",
        ".db",
        ".npy",
        ".npz",
        ".pkl",
        ".pickle",
        ".parquet",
        ".feather",
        ".h5",
        ".hdf5",
        ".onnx",
        ".pt",
        ".pth",
        ".safetensors",
        ".ckpt",
        ".tflite",
        # Office documents
        ".pdf",
        ".doc",
        ".docx",
        ".xls",
        ".xlsx",
        ".ppt",
        ".pptx",
        ".odt",
        ".ods",
        ".odp",
    }
)

MINIFIED_SUFFIXES = (
    ".min.js",
    ".min.mjs",
    ".min.cjs",
    ".min.css",
    ".bundle.js",
    ".bundle.mjs",
    ".map",
)
GENERATED_SUFFIXES = (
    "_pb2.py",
    "_pb2.pyi",
    "_pb2_grpc.py",
    ".pb.go",
    ".pb.cc",
    ".pb.h",
)
# Prose is often written one paragraph per line, so long lines there are normal
# and must not be mistaken for minified code. Extension-less files (README,
# LICENSE, AUTHORS) are mostly prose as well.
PROSE_EXTENSIONS = frozenset(
    {
        "",
        ".md",
        ".markdown",
        ".mdx",
        ".rst",
        ".txt",
        ".adoc",
        ".asciidoc",
        ".org",
        ".tex",
        ".textile",
        ".rdoc",
    }
)

# The phrases are specific on purpose: a bare "generated" would also catch
# hand-maintained files such as Django migrations ("# Generated by Django ...").
GENERATED_MARKER = re.compile(
    rb"DO NOT EDIT"
    rb"|@generated\b"
    rb"|(?i:\bcode generated by\b)"
    rb"|(?i:\b(?:auto-?|automatically |machine[- ])generated by\b)"
    rb"|(?i:\bthis file (?:is|was|has been) (?:auto-?|automatically )?generated\b)"
    rb"|(?i:\bgenerated by the protocol buffer compiler\b)"
)

# O_NOFOLLOW closes the window in which a checked regular file is swapped for a
# symlink pointing outside the root; O_NONBLOCK stops a file swapped for a FIFO
# from hanging the walk. Both are absent on Windows, where 0 disables them.
OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


@dataclass(frozen=True, slots=True)
class WalkedFile:
    """A file selected for indexing."""

    path: str
    relative_path: str
    size: int
    mtime: float


@dataclass
class WalkResult:
    """The files selected for indexing and a count of everything skipped."""

    files: list[WalkedFile]
    skipped: collections.Counter[str]


@dataclass(frozen=True, slots=True)
class _IgnoreRules:
    """Patterns from one ignore file, anchored at the directory that holds it."""

    prefix: str
    spec: GitIgnoreSpec


def file_is_binary(*, head: bytes) -> bool:
    """Return whether the leading bytes of a file mark it as binary.

    Follow git's heuristic: a NUL byte within the first 8 KB means binary. Only
    that window is inspected, however much of the file `head` holds.
    """
    return head.find(b"\x00", 0, BINARY_SNIFF_BYTES) != -1


def repository_walk(
    *,
    root: str,
    max_file_bytes: int = 1_000_000,
    languages: Callable[[str], str | None] | None = None,
) -> WalkResult:
    """Walk the repository at `root` and return the files worth indexing.

    `root` is treated as the top of the repository: `.gitignore` files in it and
    below apply with git's precedence (a deeper file overrides a shallower one,
    the last matching pattern in a file wins, `!` re-includes, `/` anchors a
    pattern to its file's directory, a trailing `/` matches directories only),
    and `.git/info/exclude` applies below all of them. `.codebase-mcp/ignore`
    at the root uses the same syntax and overrides everything else, so it can
    both hide tracked files and re-include ignored ones. Like git, an ignored
    directory is never entered, so nothing inside it can be re-included. The
    user's global excludes file is deliberately not read, so the same checkout
    yields the same index on every machine.

    `.git` (also `.hg`, `.svn`, `.bzr`) and the root `.codebase-mcp` directory
    are skipped without being counted. Everything else left out is counted once
    in `WalkResult.skipped`; a skipped directory counts once, not once per file
    inside it. Checks run cheapest first and the first that applies decides:

    1. "ignored": the file or directory matches an ignore rule.
    2. Symlinks are never followed. "symlink_outside": the target resolves
       outside the root. "unreadable": the link dangles or loops. "symlink":
       the target is inside the root, where it is walked in its own right.
    3. "vendored": a vendored, cache or build directory by name, or any
       directory holding `pyvenv.cfg` (which is how `env/` is recognised).
    4. "unreadable": a FIFO, socket or device (opening a FIFO would block).
    5. "lock_file": a package-manager lock file, by name.
    6. "binary", "minified", "generated": by name (`.png`, `.min.js`,
       `_pb2.py` and the like).
    7. "unsupported_type": `languages(relative_path)` returned None.
    8. "unreadable": the file vanished or could not be opened.
    9. "too_large": larger than `max_file_bytes`, checked before any read.
    10. "binary": a NUL byte in the first 8 KB (see `file_is_binary`).
    11. "minified": the first 4 KB averages over 200 characters per line and
        has a line over 1,000; prose formats (Markdown, reST, plain text,
        extension-less files) are exempt because they keep whole paragraphs
        on one line.
    12. "generated": a "DO NOT EDIT", "@generated", "Code generated by" or
        similar marker in the first ten lines. A bare "Generated by" does not
        count, so hand-maintained Django migrations are kept.

    Files come back sorted by relative path, with POSIX separators on every
    platform; `path` is the absolute path under `root` as given (symlinked
    roots are not resolved).

    Raise FileNotFoundError if `root` does not exist, NotADirectoryError if it
    is not a directory, and PermissionError if it cannot be listed.
    """
    root_path = _checked_root(root)
    # Symlink targets are compared against the resolved root, so a root that is
    # itself reached through a symlink still contains its own files.
    real_root = os.path.realpath(root_path)
    files: list[WalkedFile] = []
    skipped: collections.Counter[str] = collections.Counter()

    override = _load_rules(
        os.path.join(root_path, TOOL_DIRECTORY_NAME, TOOL_IGNORE_NAME), prefix=""
    )
    exclude = _load_rules(_git_info_exclude_path(root_path), prefix="")

    # Each entry is (absolute dir, relative prefix ending in "/" or "", the
    # .gitignore rules in force ordered deepest first).
    pending: list[tuple[str, str, tuple[_IgnoreRules, ...]]] = [(root_path, "", ())]
    while pending:
        directory, prefix, inherited = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError:
            # An unreadable root is a caller error worth surfacing; anything
            # deeper is just a directory we cannot index.
            if not prefix:
                raise
            skipped["unreadable"] += 1
            continue

        if prefix and any(entry.name == VIRTUALENV_MARKER for entry in entries):
            skipped["vendored"] += 1
            continue

        gitignores = inherited
        for entry in entries:
            if entry.name == GITIGNORE_NAME:
                local = _load_gitignore(entry, prefix=prefix)
                if local is not None:
                    gitignores = (local, *inherited)
                break
        rules = _rule_chain(override, gitignores, exclude)

        for entry in entries:
            name = entry.name
            if name in VCS_DIRECTORY_NAMES:
                continue
            if not prefix and name == TOOL_DIRECTORY_NAME:
                continue
            relative_path = prefix + name
            try:
                is_symlink = entry.is_symlink()
                is_directory = not is_symlink and entry.is_dir(follow_symlinks=False)
                is_file = not is_symlink and entry.is_file(follow_symlinks=False)
            except OSError:
                skipped["unreadable"] += 1
                continue

            # Git matches a symlink as a file even when it points at a
            # directory, so only real directories get the trailing slash.
            if rules and _is_ignored(relative_path, is_directory, rules):
                skipped["ignored"] += 1
                continue
            if is_symlink:
                skipped[_symlink_reason(entry.path, real_root)] += 1
                continue
            if is_directory:
                if name in VENDORED_DIRECTORY_NAMES or name.endswith(".egg-info"):
                    skipped["vendored"] += 1
                else:
                    pending.append((entry.path, relative_path + "/", gitignores))
                continue
            if not is_file:
                # FIFOs, sockets and devices: opening a FIFO would block.
                skipped["unreadable"] += 1
                continue

            outcome = _examine_file(
                entry.path, relative_path, max_file_bytes, languages
            )
            if isinstance(outcome, WalkedFile):
                files.append(outcome)
            else:
                skipped[outcome] += 1

    files.sort(key=lambda walked: walked.relative_path)
    return WalkResult(files=files, skipped=skipped)


def path_examine(
    *,
    root: str,
    relative_path: str,
    max_file_bytes: int = 1_000_000,
    languages: Callable[[str], str | None] | None = None,
) -> WalkedFile | str:
    """Return one file of the repository as the walk would select it, or why not.

    The same rules as repository_walk, applied to the directories on the way
    down and to the file, without listing anything else: what a watcher or
    an assistant that just saved a file needs. Besides the walk's reasons:
    "missing" (the path is not there, or a directory on the way is not a
    directory), "vcs" (inside `.git` and the like, or the root
    `.codebase-mcp`) and "not_a_file" (a directory).
    """
    root_path = _checked_root(root)
    real_root = os.path.realpath(root_path)
    parts = relative_path.split("/")
    override = _load_rules(
        os.path.join(root_path, TOOL_DIRECTORY_NAME, TOOL_IGNORE_NAME), prefix=""
    )
    exclude = _load_rules(_git_info_exclude_path(root_path), prefix="")
    gitignores: tuple[_IgnoreRules, ...] = ()
    directory, prefix = root_path, ""
    for depth, name in enumerate(parts):
        last = depth == len(parts) - 1
        if prefix and os.path.lexists(os.path.join(directory, VIRTUALENV_MARKER)):
            return "vendored"
        local = _load_rules_at(os.path.join(directory, GITIGNORE_NAME), prefix=prefix)
        if local is not None:
            gitignores = (local, *gitignores)
        if name in VCS_DIRECTORY_NAMES or (not prefix and name == TOOL_DIRECTORY_NAME):
            return "vcs"
        path = os.path.join(directory, name)
        try:
            status = os.lstat(path)
        except OSError:
            return "missing"
        is_symlink = stat.S_ISLNK(status.st_mode)
        is_directory = stat.S_ISDIR(status.st_mode)
        rules = _rule_chain(override, gitignores, exclude)
        if rules and _is_ignored(prefix + name, is_directory, rules):
            return "ignored"
        if is_symlink:
            return _symlink_reason(path, real_root)
        if not last:
            if not is_directory:
                return "missing"
            if name in VENDORED_DIRECTORY_NAMES or name.endswith(".egg-info"):
                return "vendored"
            directory, prefix = path, prefix + name + "/"
            continue
        if is_directory:
            return "not_a_file"
        if not stat.S_ISREG(status.st_mode):
            return "unreadable"
        return _examine_file(path, relative_path, max_file_bytes, languages)
    return "missing"


def _load_rules_at(path: str, *, prefix: str) -> _IgnoreRules | None:
    """Compile the `.gitignore` at `path` if it is a regular file (never a link)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
    except OSError:
        return None
    return _load_rules(path, prefix=prefix)


def _checked_root(root: str) -> str:
    """Return `root` as an absolute path, raising if it is not a directory."""
    path = os.path.abspath(os.fspath(root))
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "Repository root does not exist", path)
    if not os.path.isdir(path):
        raise NotADirectoryError(
            errno.ENOTDIR, "Repository root is not a directory", path
        )
    return path


def _git_info_exclude_path(root: str) -> str:
    """Return where the repository's `info/exclude` file would live."""
    dot_git = os.path.join(root, ".git")
    if not os.path.isfile(dot_git):
        return os.path.join(dot_git, "info", "exclude")
    # Worktrees and submodules have a `.git` file pointing at the real git
    # directory, and a worktree shares `info/` with the main repository.
    git_dir = dot_git
    try:
        with open(dot_git, encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                if line.startswith("gitdir:"):
                    git_dir = os.path.join(root, line[len("gitdir:") :].strip())
                    break
        with open(
            os.path.join(git_dir, "commondir"),
            encoding="utf-8",
            errors="surrogateescape",
        ) as handle:
            git_dir = os.path.join(git_dir, handle.read().strip())
    except OSError:
        pass
    return os.path.join(git_dir, "info", "exclude")


def _load_rules(path: str, *, prefix: str) -> _IgnoreRules | None:
    """Compile the ignore file at `path`, or return None if it has no patterns."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        # A missing or unreadable ignore file simply contributes no rules.
        return None
    # Decode like os.fsdecode does for file names so non-UTF-8 patterns still
    # match the names os.scandir returns.
    lines = data.decode("utf-8", errors="surrogateescape").splitlines()
    spec = GitIgnoreSpec.from_lines(lines)
    # Blank and comment lines compile to patterns with include=None.
    if not any(pattern.include is not None for pattern in spec.patterns):
        return None
    return _IgnoreRules(prefix=prefix, spec=spec)


def _load_gitignore(entry: os.DirEntry[str], *, prefix: str) -> _IgnoreRules | None:
    """Compile a directory's `.gitignore`, ignoring it if it is not a regular file."""
    try:
        # Git refuses to follow a symlinked .gitignore; doing the same also stops
        # a link from pulling rules in from outside the root.
        if not entry.is_file(follow_symlinks=False):
            return None
    except OSError:
        return None
    return _load_rules(entry.path, prefix=prefix)


def _rule_chain(
    override: _IgnoreRules | None,
    gitignores: tuple[_IgnoreRules, ...],
    exclude: _IgnoreRules | None,
) -> tuple[_IgnoreRules, ...]:
    """Order every rule set in force from highest to lowest precedence."""
    head = (override,) if override is not None else ()
    tail = (exclude,) if exclude is not None else ()
    return (*head, *gitignores, *tail)


def _is_ignored(
    relative_path: str, is_directory: bool, rules: tuple[_IgnoreRules, ...]
) -> bool:
    """Return whether the highest-precedence rule set that matches ignores a path."""
    # The trailing slash is how pathspec lets directory-only patterns ("foo/")
    # match directories but not files of the same name.
    candidate = relative_path + "/" if is_directory else relative_path
    for rule in rules:
        # Every rule set in the chain belongs to an ancestor directory, so the
        # path always starts with its prefix.
        result = rule.spec.check_file(candidate[len(rule.prefix) :], separators=())
        if result.include is not None:
            return result.include
    return False


def _symlink_reason(path: str, real_root: str) -> str:
    """Return the skip reason for the symlink at `path`, without following it."""
    # Non-strict realpath stops at the first repeated link, so loops terminate.
    target = os.path.realpath(path)
    root_prefix = real_root if real_root.endswith(os.sep) else real_root + os.sep
    if target != real_root and not target.startswith(root_prefix):
        return "symlink_outside"
    try:
        os.stat(path)
    except OSError:
        # Dangling link, or a loop (ELOOP).
        return "unreadable"
    return "symlink"


def _examine_file(
    path: str,
    relative_path: str,
    max_file_bytes: int,
    languages: Callable[[str], str | None] | None,
) -> WalkedFile | str:
    """Return the file to index, or the reason to skip it."""
    name = relative_path.rpartition("/")[2]
    if name in LOCK_FILE_NAMES:
        return "lock_file"
    lowered = name.lower()
    extension = os.path.splitext(lowered)[1]
    if extension in BINARY_EXTENSIONS:
        return "binary"
    if lowered.endswith(MINIFIED_SUFFIXES):
        return "minified"
    if lowered.endswith(GENERATED_SUFFIXES):
        return "generated"
    if languages is not None and languages(relative_path) is None:
        return "unsupported_type"

    try:
        descriptor = os.open(path, OPEN_FLAGS)
    except OSError:
        return "unreadable"
    try:
        # fstat on the open descriptor describes exactly the bytes we read, even
        # if the path is replaced in the meantime.
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return "unreadable"
        if status.st_size > max_file_bytes:
            return "too_large"
        head = os.read(descriptor, BINARY_SNIFF_BYTES)
    except OSError:
        return "unreadable"
    finally:
        os.close(descriptor)

    if file_is_binary(head=head):
        return "binary"
    sample = head[:CONTENT_SNIFF_BYTES]
    if extension not in PROSE_EXTENSIONS and _looks_minified(sample):
        return "minified"
    if _has_generated_marker(sample):
        return "generated"
    return WalkedFile(
        path=path,
        relative_path=relative_path,
        size=status.st_size,
        mtime=status.st_mtime,
    )


def _looks_minified(sample: bytes) -> bool:
    """Return whether `sample` is dominated by a few very long lines."""
    # Most files fail the cheap density test, so the split below is rare.
    if len(sample) / (sample.count(b"\n") + 1) <= MINIFIED_AVERAGE_LINE_CHARS:
        return False
    return max(map(len, sample.split(b"\n"))) > MINIFIED_LINE_CHARS


def _has_generated_marker(sample: bytes) -> bool:
    """Return whether the first lines of `sample` declare the file generated."""
    top = sample.split(b"\n", GENERATED_MARKER_LINES)[:GENERATED_MARKER_LINES]
    return GENERATED_MARKER.search(b"\n".join(top)) is not None
