"""Exact search over the indexed file texts: grep_code.

Two stages, after Google Code Search and zoekt (Russ Cox, "Regular
Expression Matching with a Trigram Index", 2012):

1. Narrow: the literals a match must contain (`parse_header`, or one of
   `foo|bar`) become `LIKE '%...%'` conditions that pg_trgm's GIN index on
   `code_file_texts` answers; a pattern with no literal of three characters
   (`.*`, `a|.`) lists the files the filters allow instead, up to a scan limit.
2. Verify: each candidate's text is matched with RE2, line by line in
   effect, as ripgrep does; the matching line, its neighbours and the
   definition around it are the answer.

The dialect is RE2's (google-re2): the syntax of ripgrep's default engine
without its Unicode classes. `\\w`, `\\d`, `\\s` and `\\b` are ASCII here
(Unicode in ripgrep); no look-around and no back-references (as in
ripgrep without --pcre2). RE2 runs in time linear in the text, so no
pattern can backtrack for ever.
"""

from __future__ import annotations

import os
import re
import re._parser as sre_parse
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import re2
from django.conf import settings
from django.db import OperationalError, transaction
from psycopg.adapt import Loader

from indexing.freshness import freshness_note
from registry.databases import project_connection
from registry.models import Project
from registry.services import project_alias
from search.exceptions import InvalidSearchQuery, ProjectSchemaOutdated, SearchTimedOut
from search.filters import chunk_filter_sql, like_escape
from search.results import FileCache

MAX_PATTERN_CHARS = 2000
MAX_CONTEXT_LINES = 10
MAX_MATCHES = 10_000
MAX_PER_FILE = 10_000
DEFAULT_MAX_MATCHES = 100
DEFAULT_MAX_PER_FILE = 20
# A line longer than this (minified code) is shown around its match only.
MAX_LINE_CHARS = 400
# The shortest literal pg_trgm can look up: one trigram.
MIN_LITERAL = 3
# Conditions sent to PostgreSQL at most: the longest literals narrow most.
MAX_CONDITIONS = 6
# Candidate texts read per round trip: at most this many files, and no
# more bytes than FETCH_BYTES (by their indexed size), so memory stays
# bounded while a round trip per 64 files (29 for `serve\w+`'s 1,849
# candidates) stops costing more than the reading.
FETCH_BATCH = 512
FETCH_BYTES = 8 << 20
# RE2's memory for one compiled pattern: a 2,000-character pattern fits;
# a pattern that would need more is refused as too complex.
RE2_MAX_MEM = 64 << 20

# The analysis version (indexing.storing) from which a file's text is kept.
TEXT_ANALYSIS_VERSION = 2

_SCHEMA_HINT = (
    "this project's database predates grep_code; bring it up to date with "
    "`manage.py migrate_projects`, then index its repositories again"
)


# --- the pattern -------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPattern:
    """A pattern ready for both stages: the literals to look up and the RE2 program."""

    regex: object
    # Each entry: a set of literals one of which every match contains.
    required: tuple[frozenset[str], ...]
    case_insensitive: bool
    # A literal every match contains (lower-cased when case_insensitive),
    # to jump between candidate lines; and whether finding it is a match.
    probe: bytes | None = None
    probe_is_match: bool = False

    @property
    def indexed(self) -> bool:
        return bool(self.required)


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = RE2_MAX_MEM
    return options


def _literal_runs(items, out: list[frozenset[str]]) -> None:
    """Append to `out` the literal sets that a match of the parsed `items` requires.

    Conservative: anything not understood breaks a run of literals and adds
    nothing, so the lookup can only get wider, never miss a match.
    """
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append(frozenset({"".join(run)}))
            run.clear()

    for op, av in items:
        if op is sre_parse.LITERAL:
            run.append(chr(av))
            continue
        flush()
        if op is sre_parse.SUBPATTERN:
            _literal_runs(av[-1], out)
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT) and av[0] >= 1:
            _literal_runs(av[2], out)
        elif op is sre_parse.BRANCH:
            choices: set[str] = set()
            for branch in av[1]:
                inner: list[frozenset[str]] = []
                _literal_runs(branch, inner)
                usable = [s for s in inner if min(map(len, s)) >= MIN_LITERAL]
                if not usable:
                    choices = set()
                    break
                # The branch implies each of its sets; the one with the
                # longest shortest member narrows most.
                choices |= max(usable, key=lambda s: min(map(len, s)))
            if choices:
                out.append(frozenset(choices))
    flush()


def _ascii_piece(literal: str) -> str:
    """Return the longest ASCII run of a literal.

    ILIKE folds case by the database's rules and RE2 by Unicode's; on ASCII
    both agree, so only ASCII is looked up case-insensitively.
    """
    return max(re.split(r"[^\x00-\x7f]+", literal), key=len)


def pattern_literals(
    *, pattern: str, regex: bool, case_insensitive: bool
) -> tuple[frozenset[str], ...]:
    """Return the literal sets every match contains (one member of each), longest first."""
    if not regex:
        found = [frozenset({pattern})]
    else:
        try:
            with warnings.catch_warnings():
                # "Possible nested set" and the like: RE2 decides, not Python.
                warnings.simplefilter("ignore")
                parsed = sre_parse.parse(pattern)
        except (re.error, RecursionError, OverflowError, ValueError):
            # A pattern Python cannot read (RE2 syntax it lacks) still runs,
            # unindexed.
            return ()
        found = []
        _literal_runs(list(parsed), found)
    kept = []
    for literals in found:
        if case_insensitive:
            literals = frozenset(_ascii_piece(text) for text in literals)
        if min(map(len, literals)) >= MIN_LITERAL:
            kept.append(literals)
    kept.sort(key=lambda s: min(map(len, s)), reverse=True)
    return tuple(dict.fromkeys(kept))[:MAX_CONDITIONS]


_INLINE_CASELESS = re.compile(r"\(\?[a-zA-Z]*i[a-zA-Z]*[:)]")


def pattern_compile(
    *, pattern: str, regex: bool, case_sensitive: bool, whole_word: bool
) -> CompiledPattern:
    """Check a pattern and compile it for RE2 and the trigram lookup."""
    if not isinstance(pattern, str):
        raise InvalidSearchQuery("The pattern must be text.")
    if "\x00" in pattern:
        raise InvalidSearchQuery(
            "The pattern holds a NUL byte; indexed files never contain one "
            "(binary files are not indexed). Remove it."
        )
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSearchQuery(
            "The pattern holds characters that are not valid Unicode (lone "
            "surrogates); send UTF-8 text."
        ) from None
    if not pattern:
        raise InvalidSearchQuery(
            "The pattern is empty; give the text to find, e.g. `parse_header`, or "
            "a regex with regex=true."
        )
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidSearchQuery(
            f"The pattern has {len(pattern)} characters; keep it under "
            f"{MAX_PATTERN_CHARS}."
        )
    if "\n" in pattern or "\r" in pattern:
        raise InvalidSearchQuery(
            "The pattern holds a line break; grep_code matches within one line. "
            "Search for one line of it."
        )
    source = pattern if regex else re2.escape(pattern)
    if isinstance(source, bytes):
        source = source.decode()
    if whole_word:
        source = rf"\b(?:{source})\b"
    flags = "m" if case_sensitive else "mi"
    try:
        compiled = re2.compile(f"(?{flags}){source}".encode(), _re2_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        if "pattern too large" in str(reason):
            raise InvalidSearchQuery(
                "The pattern is too complex to run (RE2 would need more than "
                f"{RE2_MAX_MEM >> 20} MiB); simplify its repetitions."
            ) from None
        raise InvalidSearchQuery(
            f"The pattern is not a valid regex ({reason}). The dialect is RE2 (as "
            "ripgrep's, without look-around or back-references); pass regex=false "
            "to search for the text literally."
        ) from None
    caseless = not case_sensitive or bool(regex and _INLINE_CASELESS.search(pattern))
    required = pattern_literals(pattern=pattern, regex=regex, case_insensitive=caseless)
    single = [next(iter(s)) for s in required if len(s) == 1]
    probe = None
    if single:
        probe = (single[0].lower() if caseless else single[0]).encode()
    return CompiledPattern(
        regex=compiled,
        required=required,
        case_insensitive=caseless,
        probe=probe,
        # A plain literal: where it occurs is where it matches. (Folded
        # case is left to RE2: it folds beyond ASCII.)
        probe_is_match=probe is not None
        and not regex
        and case_sensitive
        and not whole_word,
    )


# --- verifying one text ------------------------------------------------------


def text_match_lines(
    *, text: bytes, compiled: CompiledPattern, limit: int
) -> tuple[list[tuple[int, int, int, int]], int]:
    """Return (up to `limit` matches, number of matching lines) of one file's text.

    A match is (line number, byte offset of the line, byte offset of the
    match, byte offset past the line). Lines are matched as ripgrep does:
    a match never spans a line break. With a literal every match contains,
    the scan jumps from one occurrence to the next (bytes.find, in C) and
    runs RE2 only on those lines; without one, RE2 runs once per matching
    line, so even `a*` costs one step per line.
    """
    found: list[tuple[int, int, int, int]] = []
    count = 0
    line = 1
    counted_to = 0
    size = len(text)
    regex = compiled.regex
    probe = compiled.probe
    haystack = text.lower() if probe and compiled.case_insensitive else text
    position = 0
    if limit <= 0:
        return found, _lines_counted(
            text=text, haystack=haystack, start=0, compiled=compiled
        )
    while position < size:
        if probe:
            hit = haystack.find(probe, position)
            if hit < 0:
                break
        else:
            match = regex.search(text, position)
            if match is None:
                break
            hit = match.start()
            if hit == size and text.endswith(b"\n"):
                # An empty match after the last line break: no line is there.
                break
        line_start = text.rfind(b"\n", 0, hit) + 1
        line_end = text.find(b"\n", hit)
        if line_end < 0:
            line_end = size
        if probe and compiled.probe_is_match:
            start = hit
        elif probe or match.end() > line_end:
            # RE2 on this line alone (a match of the whole text may cross
            # into the next line; ripgrep's never do).
            match = regex.search(text, line_start, line_end)
            if match is None:
                position = line_end + 1
                continue
            start = match.start()
        else:
            start = hit
        line += text.count(b"\n", counted_to, line_start)
        counted_to = line_start
        count += 1
        found.append((line, line_start, start, line_end))
        position = line_end + 1
        if len(found) >= limit:
            return found, count + _lines_counted(
                text=text, haystack=haystack, start=position, compiled=compiled
            )
    return found, count


def _lines_counted(
    *, text: bytes, haystack: bytes, start: int, compiled: CompiledPattern
) -> int:
    """Count the matching lines from `start` on, without placing them.

    Once nothing more is listed only the number matters: the scan jumps from
    one occurrence of the literal to the next line (bytes.find, in C: 12 ms
    for 26k lines of Django, against 52 for splitting and testing each line),
    and RE2 runs only on the lines that hold it.
    """
    probe = compiled.probe
    if probe is None:
        return _lines_counted_by_regex(text=text, start=start, regex=compiled.regex)
    regex = None if compiled.probe_is_match else compiled.regex
    count = 0
    position = start
    while True:
        hit = haystack.find(probe, position)
        if hit < 0:
            return count
        line_end = text.find(b"\n", hit)
        if line_end < 0:
            line_end = len(text)
        if regex is None or regex.search(text, text.rfind(b"\n", 0, hit) + 1, line_end):
            count += 1
        position = line_end + 1


def _lines_counted_by_regex(*, text: bytes, start: int, regex) -> int:
    """Count matching lines with one RE2 search per matching line."""
    size = len(text)
    count = 0
    position = start
    while position < size:
        match = regex.search(text, position)
        if match is None:
            break
        hit = match.start()
        if hit == size and text.endswith(b"\n"):
            break
        line_end = text.find(b"\n", hit)
        if line_end < 0:
            line_end = size
        if match.end() > line_end:
            line_start = text.rfind(b"\n", 0, hit) + 1
            if regex.search(text, line_start, line_end) is None:
                position = line_end + 1
                continue
        count += 1
        position = line_end + 1
    return count


def _line_text(text: bytes, start: int, end: int, column: int) -> str:
    line = text[start:end].decode("utf-8", errors="replace").rstrip("\r")
    if len(line) <= MAX_LINE_CHARS:
        return line
    left = max(0, min(column - MAX_LINE_CHARS // 4, len(line) - MAX_LINE_CHARS))
    head = "…" if left else ""
    tail = "…" if left + MAX_LINE_CHARS < len(line) else ""
    return head + line[left : left + MAX_LINE_CHARS] + tail


# --- the answer --------------------------------------------------------------


@dataclass
class GrepMatch:
    """One matching line: where, its text, its neighbours and the definition around it."""

    line: int
    column: int
    text: str
    context_before: list[str] = field(default_factory=list)
    context_after: list[str] = field(default_factory=list)
    symbol: str | None = None
    symbol_kind: str | None = None


@dataclass
class GrepFile:
    """The matching lines of one file, and how many it has in all."""

    file_path: str
    repository: str
    repository_id: str
    language: str
    matches: list[GrepMatch]
    total: int
    stale: bool = False
    # The project of the file, in a search over several projects.
    project: str | None = None


@dataclass
class GrepSearch:
    """Matching lines grouped by file, with totals and how the search ran."""

    pattern: str
    regex: bool
    case_sensitive: bool
    whole_word: bool
    files: list[GrepFile]
    files_matched: int
    matches: int
    matches_shown: int
    truncated: bool
    totals_exact: bool
    indexed: bool
    candidate_files: int
    files_scanned: int
    elapsed_ms: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# Candidate files, each with the segments to verify in line order: those the
# trigram lookup found or, for a pattern it cannot narrow, all of them (the
# segments' heap rows are small; their text is read later, in batches).
_CANDIDATES_SQL = """
SELECT c.id, c.relative_path, c.language, c.sha256, c.size_bytes, c.mtime,
       r.path, r.id, array_agg(t.id ORDER BY t.first_line)
FROM code_text_segments t
JOIN code_files c ON c.id = t.file_id
JOIN repositories r ON r.id = c.repository_id
WHERE {filters}{narrow}
GROUP BY c.id, r.path, r.id
ORDER BY r.path, c.relative_path
LIMIT %(scan_limit)s
"""

# What the file held at index time, as the bytes PostgreSQL sends: the
# cursor reading it loads text as bytes (_RawText), which saves decoding
# to str and encoding back (11 ms of 1,849 files) and convert_to() in the
# server (30 ms against 42 for 441 files).
_TEXTS_SQL = "SELECT id, first_line, content FROM code_text_segments WHERE id = ANY(%s)"

# Whole texts of the files shown, for context lines that cross a segment.
_WHOLE_TEXTS_SQL = """
SELECT file_id, string_agg(content, '' ORDER BY first_line)
FROM code_text_segments WHERE file_id = ANY(%s) GROUP BY file_id
"""


class _RawText(Loader):
    """Load a text column as its UTF-8 bytes, undecoded."""

    def load(self, data) -> bytes:
        return bytes(data)


_PLAN_BITMAP_ONLY = (
    "SELECT set_config('enable_seqscan', %(v)s, true), "
    "set_config('enable_indexscan', %(v)s, true)"
)

# The innermost definition around each listed line, through the (file,
# start_line) index: one short lookup per line shown, whatever the file holds.
_SYMBOLS_SQL = """
SELECT m.file_id, m.line, s.qualified_name, s.kind
FROM unnest(%s::bigint[], %s::int[]) AS m(file_id, line)
CROSS JOIN LATERAL (
    SELECT qualified_name, kind FROM code_symbols s
    WHERE s.file_id = m.file_id AND s.start_line <= m.line AND s.end_line >= m.line
    ORDER BY s.end_line - s.start_line, s.start_line DESC
    LIMIT 1
) s
"""


# The expression of the second trigram index (migration 0006): `_` read as
# a letter, so an identifier's trigrams cross its underscores.
JOINED_TEXT = "replace(t.content, '_', 'q')"


def _narrow_sql(compiled: CompiledPattern, params: dict) -> str:
    """Return the LIKE conditions that a trigram index answers (stage 1).

    A literal holding `_` is looked up in the index of the joined text
    (`read_block` -> `readqblock`): 74 candidates of 8,490 files instead of
    3,461. Others use the plain index, whose recheck costs a third as much.
    """
    operator = "ILIKE" if compiled.case_insensitive else "LIKE"
    joined = any("_" in literal for group in compiled.required for literal in group)
    column = JOINED_TEXT if joined else "t.content"
    clauses = []
    for group, literals in enumerate(compiled.required):
        options = []
        for member, literal in enumerate(sorted(literals)):
            name = f"lit{group}_{member}"
            looked_up = literal.replace("_", "q") if joined else literal
            params[name] = f"%{like_escape(looked_up)}%"
            options.append(f"{column} {operator} %({name})s")
        clauses.append("(" + " OR ".join(options) + ")")
    return "".join(f" AND {clause}" for clause in clauses)


def _files_without_text(*, alias: str) -> int:
    """Return how many files were indexed before texts were kept (raise if none can be)."""
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SELECT to_regclass('code_text_segments') IS NOT NULL")
        if not cursor.fetchone()[0]:
            raise ProjectSchemaOutdated(f"grep_code is unavailable: {_SCHEMA_HINT}.")
        cursor.execute(
            "SELECT count(*) FROM code_files WHERE analysis_version < %s",
            [TEXT_ANALYSIS_VERSION],
        )
        return cursor.fetchone()[0]


def _int_clean(what: str, value: object, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise InvalidSearchQuery(f"{what} must be an integer from {low} to {high}.")
    return value


def code_grep(
    *,
    project: Project,
    pattern: str,
    regex: bool = False,
    case_sensitive: bool = True,
    whole_word: bool = False,
    repository: str | None = None,
    language: str | None = None,
    file_type: str | None = None,
    directory: str | None = None,
    path_glob: str | None = None,
    context_lines: int = 0,
    max_matches: int = DEFAULT_MAX_MATCHES,
    max_per_file: int = DEFAULT_MAX_PER_FILE,
) -> GrepSearch:
    """Find every line of the indexed files that matches a pattern, grouped by file.

    Files come in repository and path order. Once `max_matches` lines are
    listed the scan goes on only to count, for GREP_COUNT_SECONDS at most;
    `totals_exact` says whether the totals cover every candidate.
    """
    started = time.monotonic()
    for what, value in (("regex", regex), ("case_sensitive", case_sensitive)):
        if not isinstance(value, bool):
            raise InvalidSearchQuery(f"{what} must be true or false.")
    if not isinstance(whole_word, bool):
        raise InvalidSearchQuery("whole_word must be true or false.")
    context_lines = _int_clean("context_lines", context_lines, 0, MAX_CONTEXT_LINES)
    max_matches = _int_clean("max_matches", max_matches, 1, MAX_MATCHES)
    max_per_file = _int_clean("max_per_file", max_per_file, 1, MAX_PER_FILE)
    compiled = pattern_compile(
        pattern=pattern,
        regex=regex,
        case_sensitive=case_sensitive,
        whole_word=whole_word,
    )
    alias = project_alias(project=project)
    without_text = _files_without_text(alias=alias)
    filters, params = chunk_filter_sql(
        alias=alias,
        repository=repository,
        language=language,
        file_type=file_type,
        directory=directory,
        path_glob=path_glob,
    )
    scan_limit = settings.GREP_SCAN_LIMIT_FILES
    params["scan_limit"] = scan_limit + 1
    narrow = _narrow_sql(compiled, params)
    sql = _CANDIDATES_SQL.format(filters=filters, narrow=narrow)
    timeout_ms = int(settings.GREP_TIMEOUT_SECONDS * 1000)
    notes: list[str] = []
    stale = freshness_note(alias=alias)
    if stale:
        notes.append(stale)
    connection = project_connection(database_name=alias)
    try:
        with (
            transaction.atomic(using=alias),
            connection.cursor() as cursor,
            connection.cursor() as texts_cursor,
        ):
            texts_cursor.cursor.adapters.register_loader("text", _RawText)
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)]
            )
            if narrow:
                # The planner prices reading code_text_segments by its heap
                # pages, not by the TOAST pages it would decompress to
                # recheck every text, and a lookup of many trigrams above
                # both: it picks a scan of the table or of its primary key
                # (23-32 ms on Django) over the trigram index (3-7 ms).
                # Only bitmap scans are left to it, for this query only.
                cursor.execute(_PLAN_BITMAP_ONLY, {"v": "off"})
            cursor.execute(sql, params)
            candidates = cursor.fetchall()
            if narrow:
                cursor.execute(_PLAN_BITMAP_ONLY, {"v": "on"})
            cut_by_scan = len(candidates) > scan_limit
            candidates = candidates[:scan_limit]
            result = _verify(
                alias=alias,
                cursor=cursor,
                texts_cursor=texts_cursor,
                compiled=compiled,
                candidates=candidates,
                context_lines=context_lines,
                max_matches=max_matches,
                max_per_file=max_per_file,
                started=started,
            )
    except OperationalError as exc:
        if "statement timeout" not in str(exc):
            raise
        raise SearchTimedOut(
            f"grep_code stopped at the statement timeout "
            f"({settings.GREP_TIMEOUT_SECONDS:g} s) while reading candidate files; "
            "add a longer literal to the pattern or narrow it with directory, "
            "path_glob or language."
        ) from None
    files, counted, total_lines, scanned, exact, timed_out = result
    if without_text:
        notes.append(
            f"{without_text} files were indexed before grep_code kept file texts "
            "and are not searched; index their repository again to add them."
        )
    if not compiled.indexed:
        notes.append(
            "The pattern has no literal of 3+ characters, so the trigram index "
            f"could not narrow it: ran unindexed over {scanned} files."
        )
    if cut_by_scan:
        exact = False
        notes.append(
            f"Only the first {scan_limit} candidate files (by path) were scanned; "
            "narrow the pattern, directory or path_glob to see the rest."
        )
    if timed_out:
        notes.append(
            f"Stopped after {settings.GREP_TIMEOUT_SECONDS:g} s with {scanned} of "
            f"{len(candidates)} candidate files scanned; narrow the search."
        )
    shown = sum(len(f.matches) for f in files)
    truncated = shown < total_lines
    if truncated and not timed_out:
        notes.append(
            f"Showing {shown} of {'at least ' if not exact else ''}{total_lines} "
            "matching lines; raise max_matches or max_per_file, or narrow with "
            "directory / path_glob."
        )
    stale = sum(1 for f in files if f.stale)
    if stale:
        notes.append(
            f"{stale} files changed on disk since indexing; their matches are from "
            "the indexed text (stale=true). Index again to refresh them."
        )
    return GrepSearch(
        pattern=pattern,
        regex=regex,
        case_sensitive=case_sensitive,
        whole_word=whole_word,
        files=files,
        files_matched=counted,
        matches=total_lines,
        matches_shown=shown,
        truncated=truncated,
        totals_exact=exact,
        indexed=compiled.indexed,
        candidate_files=len(candidates),
        files_scanned=scanned,
        elapsed_ms=round((time.monotonic() - started) * 1000, 2),
        notes=notes,
    )


def _batches(candidates: list[tuple]):
    """Yield the candidates in runs of FETCH_BATCH files or FETCH_BYTES, whichever first."""
    batch: list[tuple] = []
    size = 0
    for row in candidates:
        batch.append(row)
        size += row[4] or 0
        if len(batch) >= FETCH_BATCH or size >= FETCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _segments_read(*, cursor, batch: list[tuple]) -> dict[int, tuple[int, bytes]]:
    """Return {segment id: (first line, text)} of a batch of candidate files."""
    cursor.execute(_TEXTS_SQL, [[segment for row in batch for segment in row[8]]])
    return {segment: (first, text) for segment, first, text in cursor.fetchall()}


def _segments_read_apart(*, alias: str, batch: list[tuple]) -> dict:
    """Read a batch on this thread's own connection, in a transaction of its own."""
    connection = project_connection(database_name=alias)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("text", _RawText)
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            [str(int(settings.GREP_TIMEOUT_SECONDS * 1000))],
        )
        return _segments_read(cursor=cursor, batch=batch)


def _segments_stream(*, batches: list[list[tuple]], texts_cursor, alias: str):
    """Yield (batch, its segments); with several batches, read the next one meanwhile.

    Reading is PostgreSQL's work (TOAST pages, the socket) and matching is
    Python's: with the next batch read on a second connection from a
    thread, the two overlap on two cores (`return` over 5,122 files: PG
    waits were 250 of 400 ms). One batch, the selective case, is read here.
    """
    if len(batches) <= 1:
        for batch in batches:
            yield batch, _segments_read(cursor=texts_cursor, batch=batch)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grep-read")
    try:
        ahead = pool.submit(_segments_read_apart, alias=alias, batch=batches[0])
        for number, batch in enumerate(batches):
            segments = ahead.result()
            if number + 1 < len(batches):
                ahead = pool.submit(
                    _segments_read_apart, alias=alias, batch=batches[number + 1]
                )
            yield batch, segments
    finally:
        # The reader's connection goes back to the alias' pool.
        pool.submit(lambda: project_connection(database_name=alias).close())
        pool.shutdown(wait=True)


def _verify(
    *,
    alias: str,
    cursor,
    texts_cursor,
    compiled: CompiledPattern,
    candidates: list[tuple],
    context_lines: int,
    max_matches: int,
    max_per_file: int,
    started: float,
):
    """Match the candidates' segments (stage 2); return files, totals and how far it got."""
    deadline = started + settings.GREP_TIMEOUT_SECONDS
    count_until: float | None = None
    files: list[GrepFile] = []
    # (file row, [(segment text, its matches)], the file's matching lines)
    pending: list[tuple[tuple, list[tuple[bytes, list]], int]] = []
    files_matched = total_lines = scanned = 0
    listed = 0
    exact, timed_out = True, False
    stream = _segments_stream(
        batches=list(_batches(candidates)), texts_cursor=texts_cursor, alias=alias
    )
    for batch, segments in stream:
        now = time.monotonic()
        if now > deadline:
            timed_out, exact = True, False
            break
        if count_until is not None and now > count_until:
            exact = False
            break
        for row in batch:
            scanned += 1
            shown: list[tuple[bytes, list]] = []
            lines = 0
            for segment in row[8]:
                if segment not in segments:
                    continue
                first_line, text = segments[segment]
                room = min(max_per_file, max_matches - listed) - sum(
                    len(found) for _, found in shown
                )
                found, count = text_match_lines(
                    text=text, compiled=compiled, limit=max(room, 0)
                )
                lines += count
                if found:
                    shown.append(
                        (
                            text,
                            [(line + first_line - 1, *rest) for line, *rest in found],
                        )
                    )
            if not lines:
                continue
            files_matched += 1
            total_lines += lines
            if shown:
                listed += sum(len(found) for _, found in shown)
                pending.append((row, shown, lines))
        if listed >= max_matches and count_until is None:
            count_until = time.monotonic() + settings.GREP_COUNT_SECONDS
    stream.close()
    if pending:
        keys = [
            (row[0], m[0])
            for row, shown, _ in pending
            for _, found in shown
            for m in found
        ]
        cursor.execute(
            _SYMBOLS_SQL, [[key[0] for key in keys], [key[1] for key in keys]]
        )
        symbols = {
            (file_id, line): (name, kind)
            for file_id, line, name, kind in cursor.fetchall()
        }
        whole: dict[int, bytes] = {}
        if context_lines:
            texts_cursor.execute(_WHOLE_TEXTS_SQL, [[row[0] for row, _, _ in pending]])
            whole = dict(texts_cursor.fetchall())
        cache = FileCache()
        for row, shown, lines in pending:
            files.append(
                _file_shape(
                    row=row,
                    shown=shown,
                    total=lines,
                    symbols=symbols,
                    cache=cache,
                    context_lines=context_lines,
                    whole=whole.get(row[0]),
                )
            )
    # A file whose lines did not fit is counted in files_matched, not listed.
    return files, files_matched, total_lines, scanned, exact, timed_out


def _file_shape(
    *,
    row,
    shown: list[tuple[bytes, list]],
    total: int,
    symbols: dict,
    cache,
    context_lines: int,
    whole: bytes | None,
) -> GrepFile:
    file_id, relative_path, language, sha256, size, mtime, repo_path, repo_id, _ = row
    absolute = os.path.join(repo_path, relative_path)
    starts: list[int] | None = None
    if context_lines and whole is not None:
        starts = [0] + [m.end() for m in re.finditer(b"\n", whole)]
    matches = []
    for text, found in shown:
        for line, line_start, start, line_end in found:
            column = len(text[line_start:start].decode("utf-8", errors="replace")) + 1
            before: list[str] = []
            after: list[str] = []
            if starts is not None:
                for number in range(max(1, line - context_lines), line):
                    before.append(_numbered_line(whole, starts, number))
                last = len(starts)
                if whole.endswith(b"\n"):
                    last -= 1
                for number in range(line + 1, min(last, line + context_lines) + 1):
                    after.append(_numbered_line(whole, starts, number))
            name, kind = symbols.get((file_id, line), (None, None))
            matches.append(
                GrepMatch(
                    line=line,
                    column=column,
                    text=_line_text(text, line_start, line_end, column),
                    context_before=before,
                    context_after=after,
                    symbol=name,
                    symbol_kind=kind,
                )
            )
    return GrepFile(
        file_path=relative_path,
        repository=repo_path,
        repository_id=str(repo_id),
        language=language,
        matches=matches,
        total=total,
        stale=cache.stale(absolute, sha256, size, mtime),
    )


def _numbered_line(text: bytes, starts: list[int], number: int) -> str:
    start = starts[number - 1]
    end = starts[number] - 1 if number < len(starts) else len(text)
    return _line_text(text, start, end, 0)
