"""Navigate a project's code by name: definitions, references and file outlines.

Two stages, as everywhere in search: an index narrows (b-tree on the exact,
lower-cased and qualified names, the trigram GIN index for fuzzy names, the
b-tree on reference names), then the rows are ranked and shaped here.
Resolution is by name, not by type (this is not a language server): a call
of `save` is a reference to every definition named `save`, and the answer
says so when a name is ambiguous.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from django.db import transaction

from indexing.chunking.chunk import KIND_LETTERS, KINDS_BY_LETTER
from indexing.chunking.grammars import GRAMMARS
from indexing.freshness import freshness_note
from registry.databases import project_connection
from registry.models import Project
from registry.services import project_alias
from search.exceptions import InvalidSearchQuery, ProjectSchemaOutdated, UnknownFile
from search.filters import chunk_filter_sql, filter_clean, like_escape
from search.results import FileCache

MATCHES = ("exact", "prefix", "fuzzy")
REFERENCE_KINDS = ("call", "attribute", "type", "import", "name")
MAX_NAME_CHARS = 200
MAX_LIMIT = 200
DEFAULT_BODY_LINES = 40
MAX_BODY_LINES = 400
# Names offered when a name is not found.
SUGGESTIONS = 5

_SCHEMA_HINT = (
    "this project's database predates the current symbol and reference tables; "
    "bring it up to date with `manage.py migrate_projects` (and index its "
    "repositories again if it had no symbols yet)"
)


def symbol_kinds() -> frozenset[str]:
    """Return every kind of definition the symbol table records."""
    containers = {kind for g in GRAMMARS.values() for kind in g.containers.values()}
    return frozenset(
        {"function", "method", "object", "constant", "variable", "type", "module"}
        | containers
    )


def _name_clean(name: object, *, what: str = "name") -> str:
    if not isinstance(name, str):
        raise InvalidSearchQuery(f"The {what} must be text.")
    cleaned = filter_clean(what, name)
    cleaned = (cleaned or "").strip()
    if not cleaned:
        raise InvalidSearchQuery(
            f"The {what} is empty; give an identifier such as `parse_header` or a "
            "qualified name such as `Parser.parse_header`."
        )
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidSearchQuery(
            f"The {what} has {len(cleaned)} characters; identifiers are shorter than "
            f"{MAX_NAME_CHARS}. To find text, use search_code."
        )
    return cleaned


def _choice_clean(what: str, value: object, allowed) -> str | None:
    if value is None:
        return None
    text = filter_clean(what, value)
    cleaned = (text or "").strip().lower()
    if cleaned not in allowed:
        raise InvalidSearchQuery(
            f"Unknown {what} {value!r}; use one of: {', '.join(sorted(allowed))}."
        )
    return cleaned


def _limit_clean(what: str, value: object, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise InvalidSearchQuery(f"{what} must be an integer from 1 to {top}.")
    return value


def _tables_exist(*, alias: str) -> tuple[bool, int]:
    """Return whether the symbol tables exist, and how many files predate them.

    References kept one row per use (before indexing.0008) count as missing:
    the index of that layout is gone once the project is migrated.
    """
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('code_symbols') IS NOT NULL "
            "AND to_regclass('code_references_name') IS NULL"
        )
        if not cursor.fetchone()[0]:
            return False, 0
        cursor.execute(
            "SELECT count(*) FROM code_files WHERE analysis_version < 1 "
            "AND language <> 'text'"
        )
        return True, cursor.fetchone()[0]


def _prepare(*, project: Project) -> tuple[str, list[str]]:
    alias = project_alias(project=project)
    exists, unanalysed = _tables_exist(alias=alias)
    if not exists:
        raise ProjectSchemaOutdated(f"Navigation is unavailable: {_SCHEMA_HINT}.")
    notes = []
    if unanalysed:
        notes.append(
            f"{unanalysed} files were indexed before symbols existed and are not "
            "searched here; index their repository again (manage.py index PATH or "
            "index_repository) to add them."
        )
    stale = freshness_note(alias=alias)
    if stale:
        notes.append(stale)
    return alias, notes


def _fetch(alias: str, sql: str, params: dict) -> list[tuple]:
    connection = project_connection(database_name=alias)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # What `%` means for the trigram arms, for this transaction only.
        cursor.execute(
            "SELECT set_config('pg_trgm.similarity_threshold', %s, true)",
            [str(FUZZY_SIMILARITY)],
        )
        cursor.execute(sql, params)
        return cursor.fetchall()


def _filters(
    *,
    alias: str,
    repository: str | None,
    language: str | None,
    path_glob: str | None,
    directory: str | None = None,
) -> tuple[str, dict]:
    return chunk_filter_sql(
        alias=alias,
        repository=repository,
        language=language,
        file_type=None,
        directory=directory,
        path_glob=path_glob,
    )


# --- find_symbol -------------------------------------------------------------


@dataclass
class SymbolHit:
    """One definition: what it is, where, its signature, doc and head of body."""

    name: str
    qualified_name: str
    kind: str
    parent: str | None
    language: str
    repository: str
    repository_id: str
    file_path: str
    start_line: int
    end_line: int
    signature: str
    doc: str
    body: str
    body_lines_cut: int
    match: str
    stale: bool = False
    # The project of the definition, in a search over several projects.
    project: str | None = None


@dataclass
class NameCount:
    """A defined name and how many definitions carry it."""

    name: str
    definitions: int


@dataclass
class SymbolSearch:
    """Definitions found for a name, best first, or the names it may have meant."""

    query: str
    match: str
    symbols: list[SymbolHit]
    total: int
    suggestions: list[NameCount] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# How a definition matched, best first (a symbol hit's `match`).
MATCH_ORDER = ("name", "qualified", "case", "prefix", "fuzzy")
_RANKS = MATCH_ORDER

# rank: 0 exact name, 1 exact qualified name (or its tail: "Inner.method" for
# "Outer.Inner.method"), 2 name in another case, 3 prefix of the name or the
# qualified name, 4 trigram-similar name. Each arm has its own index.
# Ranked and cut in code_symbols alone, so a name defined hundreds of times
# (`__init__`, `get`) joins only the shown rows to their files and chunks.
_SYMBOL_SQL = """
WITH candidates AS ({arms})
SELECT s.name, s.qualified_name, s.kind, s.parent, s.language, r.path,
    s.repository_id, s.relative_path, s.start_line, s.end_line, s.signature,
    s.doc, s.rank, f.sha256, f.size_bytes, f.mtime, ch.start_line, ch.end_line,
    ch.content, s.total
FROM (
    SELECT c.*, count(*) OVER () AS total, CASE
        WHEN c.name = %(name)s THEN 0
        WHEN c.qualified_name = %(name)s
            OR (c.name = %(last)s AND c.qualified_name LIKE %(tail)s) THEN 1
        WHEN lower(c.name) = lower(%(name)s) THEN 2
        WHEN c.name LIKE %(prefix)s OR c.qualified_name LIKE %(prefix)s THEN 3
        ELSE 4 END AS rank,
        similarity(lower(c.name), lower(%(last)s)) AS sim
    FROM (SELECT DISTINCT id FROM candidates) d
    JOIN code_symbols c ON c.id = d.id WHERE {where}
    ORDER BY rank, sim DESC, length(c.qualified_name), c.relative_path, c.start_line
    LIMIT %(limit)s
) s
JOIN repositories r ON r.id = s.repository_id
JOIN code_files f ON f.id = s.file_id
LEFT JOIN code_chunks ch ON ch.id = s.chunk_id
ORDER BY s.rank, s.sim DESC, length(s.qualified_name), s.relative_path, s.start_line
"""
# Fuzzy names are misspellings: at most FUZZY_EDITS edits away (a swap of two
# letters is two), of the same first letter and about the same length, which
# a b-tree on (first letter, length) narrows to a few hundred names at 130k
# symbols. Suggestions for a name nothing matches fall back to trigram
# similarity (pg_trgm), which finds more but takes 10-30 ms at that size.
FUZZY_EDITS = 2
FUZZY_SIMILARITY = 0.4
# One arm per index, joined by UNION ALL: an OR across them would scan the table.
_ARMS = {
    "exact": (
        "SELECT id FROM code_symbols WHERE name = %(name)s",
        "SELECT id FROM code_symbols WHERE qualified_name = %(name)s",
        "SELECT id FROM code_symbols WHERE name = %(last)s"
        " AND qualified_name LIKE %(tail)s",
        "SELECT id FROM code_symbols WHERE lower(name) = lower(%(name)s)",
    ),
    "prefix": (
        "SELECT id FROM code_symbols WHERE name LIKE %(prefix)s",
        "SELECT id FROM code_symbols WHERE qualified_name LIKE %(prefix)s",
    ),
    "fuzzy": (
        "SELECT id FROM code_symbols WHERE lower(left(name, 1)) = %(initial)s"
        " AND length(name) BETWEEN %(shortest)s AND %(longest)s"
        " AND levenshtein_less_equal(lower(name), %(lowered)s, %(edits)s)"
        " <= %(edits)s",
    ),
}

_SUGGEST_SQL = """
WITH near AS (
    SELECT c.name, levenshtein_less_equal(lower(c.name), %(lowered)s, %(edits)s)
        AS edits
    FROM code_symbols c
    WHERE lower(left(c.name, 1)) = %(initial)s
        AND length(c.name) BETWEEN %(shortest)s AND %(longest)s AND {where}
)
SELECT name, count(*) FROM near WHERE edits <= %(edits)s
GROUP BY name ORDER BY min(edits), count(*) DESC, name LIMIT %(n)s
"""
_SUGGEST_TRIGRAM_SQL = """
SELECT c.name, count(*) FROM code_symbols c
WHERE lower(c.name) %% lower(%(last)s) AND {where}
GROUP BY c.name
ORDER BY max(similarity(lower(c.name), lower(%(last)s))) DESC, count(*) DESC, c.name
LIMIT %(n)s
"""


def _fuzzy_params(last: str) -> dict:
    edits = 1 if len(last) <= 4 else FUZZY_EDITS
    return {
        "lowered": last.lower(),
        "initial": last[:1].lower(),
        "edits": edits,
        "shortest": max(1, len(last) - edits),
        "longest": len(last) + edits,
    }


def _body(
    *,
    files: FileCache,
    absolute: str,
    file_state: tuple[str, int, float],
    span: tuple[int, int],
    chunk: tuple[int | None, int | None, str | None],
    body_lines: int,
) -> tuple[str, int, bool]:
    """Return the head of a definition's body, the lines cut, and staleness.

    From the file when it is unchanged since indexing; else from the chunk
    that holds the definition (what was indexed).
    """
    start, end = span
    stale = files.stale(absolute, *file_state)
    wanted = end - start + 1
    shown = min(wanted, body_lines)
    lines = None if stale else files.lines(absolute)
    if lines is not None:
        return "\n".join(lines[start - 1 : start - 1 + shown]), wanted - shown, stale
    chunk_start, chunk_end, content = chunk
    if content is None or chunk_start is None or chunk_end is None:
        return "", wanted, stale
    chunk_lines = content.split("\n")
    # A member's chunk opens with its class's header line, not counted in
    # its line numbers.
    header = 1 if len(chunk_lines) > chunk_end - chunk_start + 1 else 0
    offset = max(0, start - chunk_start) + header
    part = chunk_lines[offset : offset + shown]
    return "\n".join(part), wanted - len(part), stale


def symbol_find(
    *,
    project: Project,
    name: str,
    kind: str | None = None,
    language: str | None = None,
    repository: str | None = None,
    path_glob: str | None = None,
    match: str = "exact",
    limit: int = 10,
    body_lines: int = DEFAULT_BODY_LINES,
) -> SymbolSearch:
    """Return the definitions of a name, ranked: exact, qualified, prefix, fuzzy.

    `match` widens the search: "exact" (the name, its qualified form or its
    tail, or the name in another case), "prefix" (also names and qualified
    names starting with it), "fuzzy" (also trigram-similar names). Nothing
    found suggests the closest defined names.
    """
    name = _name_clean(name)
    match = _choice_clean("match", match, MATCHES) or "exact"
    kind = _choice_clean("kind", kind, symbol_kinds())
    limit = _limit_clean("limit", limit, MAX_LIMIT)
    if body_lines != 0:
        body_lines = _limit_clean("body_lines", body_lines, MAX_BODY_LINES)
    alias, notes = _prepare(project=project)
    where, params = _filters(
        alias=alias, repository=repository, language=language, path_glob=path_glob
    )
    if kind:
        where += " AND c.kind = %(kind)s"
    last = name.rsplit(".", 1)[-1].rsplit("::", 1)[-1] or name
    arms = " UNION ALL ".join(
        arm for m in MATCHES[: MATCHES.index(match) + 1] for arm in _ARMS[m]
    )
    params.update(
        name=name,
        last=last,
        tail="%." + like_escape(name),
        prefix=like_escape(name) + "%",
        limit=limit,
        kind=kind,
        **_fuzzy_params(last),
    )
    rows = _fetch(alias, _SYMBOL_SQL.format(arms=arms, where=where), params)
    files = FileCache()
    hits = []
    for row in rows:
        body, cut, stale = _body(
            files=files,
            absolute=os.path.join(row[5], row[7]),
            file_state=(row[13], row[14], row[15]),
            span=(row[8], row[9]),
            chunk=(row[16], row[17], row[18]),
            body_lines=body_lines,
        )
        hits.append(
            SymbolHit(
                name=row[0],
                qualified_name=row[1],
                kind=row[2],
                parent=row[3],
                language=row[4],
                repository=row[5],
                repository_id=str(row[6]),
                file_path=row[7],
                start_line=row[8],
                end_line=row[9],
                signature=row[10],
                doc=row[11],
                body=body,
                body_lines_cut=cut,
                match=_RANKS[row[12]],
                stale=stale,
            )
        )
    total = rows[0][19] if rows else 0
    suggestions: list[NameCount] = []
    if not hits:
        suggested = _fetch(
            alias, _SUGGEST_SQL.format(where=where), {**params, "n": SUGGESTIONS}
        ) or _fetch(
            alias,
            _SUGGEST_TRIGRAM_SQL.format(where=where),
            {**params, "n": SUGGESTIONS},
        )
        suggestions = [NameCount(name=n, definitions=c) for n, c in suggested]
        offered = ", ".join(f"`{s.name}` ({s.definitions})" for s in suggestions)
        notes.append(
            f"No definition of `{name}`"
            + (f"; did you mean {offered}?" if offered else ".")
            + ("" if match == "fuzzy" else " match='fuzzy' also finds similar names.")
        )
    elif total > len(hits):
        notes.append(
            f"{total} definitions match; showing {len(hits)}. Raise limit or narrow "
            "with kind, language, repository or path_glob."
        )
    return SymbolSearch(
        query=name,
        match=match,
        symbols=hits,
        total=total,
        suggestions=suggestions,
        notes=notes,
    )


# --- find_references ---------------------------------------------------------


@dataclass
class ReferenceHit:
    """One use of the name: its line, the line's text, how it is used, and where."""

    line: int
    column: int
    kind: str
    text: str
    container: str | None


@dataclass
class FileReferences:
    """The uses of the name in one file; `total` counts all, `references` the shown."""

    repository: str
    file_path: str
    total: int
    references: list[ReferenceHit]
    stale: bool = False


@dataclass
class DefinitionRef:
    """A definition carrying the name, reported apart from its uses."""

    qualified_name: str
    kind: str
    repository: str
    file_path: str
    start_line: int
    end_line: int


@dataclass
class ReferenceSearch:
    """Where a name is used, grouped by file, and which definitions carry it."""

    query: str
    name: str
    definitions: list[DefinitionRef]
    files: list[FileReferences]
    total_references: int
    total_files: int
    truncated: bool
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# A name's uses in a file are one row (code_references): totals per file are
# the lengths of its arrays, read through the (name, file_id) key; the uses
# shown are unnested file by file, at most per_file each, so a name used
# 20,000 times costs a row per file and the uses shown, not a sort of all.
_REFERENCE_SQL = """
WITH files AS MATERIALIZED (
    SELECT file_id, uses FROM (
        SELECT r.file_id, {uses} AS uses FROM code_references r
        JOIN code_files c ON c.id = r.file_id
        WHERE r.name = %(name)s AND {where}
    ) counted WHERE uses > 0
), shown AS (
    SELECT files.file_id, files.uses FROM files
    JOIN code_files f ON f.id = files.file_id
    JOIN repositories repo ON repo.id = f.repository_id
    ORDER BY f.relative_path, repo.path LIMIT %(limit)s
)
SELECT f.id, f.relative_path, repo.path, f.sha256, f.size_bytes, f.mtime,
    u.line, u.col, u.letter, u.container,
    (SELECT sum(uses) FROM files), shown.uses, (SELECT count(*) FROM files)
FROM shown
JOIN code_files f ON f.id = shown.file_id
JOIN repositories repo ON repo.id = f.repository_id
CROSS JOIN LATERAL (
    SELECT u.line, u.col, u.letter, u.container FROM code_references r,
    unnest(r.lines, r.columns, string_to_array(r.kinds, NULL), r.containers)
        AS u(line, col, letter, container)
    WHERE r.name = %(name)s AND r.file_id = shown.file_id {kind}
    ORDER BY u.line, u.col LIMIT %(per_file)s
) u
ORDER BY f.relative_path, repo.path, u.line, u.col
LIMIT %(limit)s
"""
# With a kind, a file counts the letters of that kind among its uses.
_ALL_USES = "cardinality(r.lines)"
_USES_OF_KIND = "length(r.kinds) - length(replace(r.kinds, %(letter)s, ''))"
_DEFINITIONS_SQL = """
SELECT c.qualified_name, c.kind, r.path, c.relative_path, c.start_line, c.end_line
FROM code_symbols c JOIN repositories r ON r.id = c.repository_id
WHERE c.name = %(name)s AND {where}
ORDER BY c.qualified_name, c.relative_path, c.start_line
LIMIT 50
"""


def reference_find(
    *,
    project: Project,
    name: str,
    kind: str | None = None,
    language: str | None = None,
    repository: str | None = None,
    path_glob: str | None = None,
    directory: str | None = None,
    limit: int = 50,
    per_file: int = 20,
) -> ReferenceSearch:
    """Return the uses of a name grouped by file, and the definitions carrying it.

    A qualified name (`Parser.parse_header`) narrows the definitions; uses
    are matched by the name's last part, since the index does not resolve
    types. `kind` keeps one kind of use (call, attribute, type, import, name).
    """
    query = _name_clean(name)
    kind = _choice_clean("kind", kind, REFERENCE_KINDS)
    limit = _limit_clean("limit", limit, MAX_LIMIT * 5)
    per_file = _limit_clean("per_file", per_file, MAX_LIMIT)
    alias, notes = _prepare(project=project)
    where, params = _filters(
        alias=alias,
        repository=repository,
        language=language,
        path_glob=path_glob,
        directory=directory,
    )
    short = query.replace("::", ".").rsplit(".", 1)[-1] or query
    params.update(
        name=short,
        letter=KIND_LETTERS.get(kind or ""),
        limit=limit,
        per_file=per_file,
    )
    kind_sql = "AND u.letter = %(letter)s" if kind else ""
    uses_sql = _USES_OF_KIND if kind else _ALL_USES
    defined = _fetch(alias, _DEFINITIONS_SQL.format(where=where), params)
    definitions = [
        DefinitionRef(
            qualified_name=q,
            kind=k,
            repository=repo,
            file_path=p,
            start_line=s,
            end_line=e,
        )
        for q, k, repo, p, s, e in defined
    ]
    qualified = query.replace("::", ".")
    if qualified != short:
        narrowed = [
            d
            for d in definitions
            if d.qualified_name == qualified
            or d.qualified_name.endswith("." + qualified)
        ]
        if not narrowed and definitions:
            notes.append(
                f"No definition is named `{qualified}`; `{short}` is defined as "
                + ", ".join(sorted({d.qualified_name for d in definitions})[:10])
                + "."
            )
        others = len({d.qualified_name for d in definitions}) - len(
            {d.qualified_name for d in narrowed}
        )
        definitions = narrowed or definitions
        notes.append(
            f"Uses are matched by the name `{short}`"
            + (f"; {others} other definitions share it." if others > 0 else ".")
        )
    else:
        names = sorted({d.qualified_name for d in definitions})
        if len(names) > 1:
            notes.append(
                f"`{short}` names {len(names)} definitions ({', '.join(names[:10])}); "
                "uses are matched by name and may mean any of them. Narrow with a "
                "qualified name, path_glob or repository."
            )
    rows = _fetch(
        alias, _REFERENCE_SQL.format(kind=kind_sql, uses=uses_sql, where=where), params
    )
    total_files = rows[0][12] if rows else 0
    files = FileCache()
    grouped: dict[int, FileReferences] = {}
    shown = 0
    for (
        file_id,
        path,
        repo_path,
        sha,
        size,
        mtime,
        line,
        column,
        letter,
        container,
        _,
        file_total,
        _,
    ) in rows:
        absolute = os.path.join(repo_path, path)
        group = grouped.get(file_id)
        if group is None:
            group = grouped[file_id] = FileReferences(
                repository=repo_path,
                file_path=path,
                total=file_total,
                references=[],
                stale=files.stale(absolute, sha, size, mtime),
            )
        lines = None if group.stale else files.lines(absolute)
        text = lines[line - 1].strip() if lines and 0 < line <= len(lines) else ""
        group.references.append(
            ReferenceHit(
                line=line,
                column=column,
                kind=KINDS_BY_LETTER[letter],
                text=text[:300],
                container=container,
            )
        )
        shown += 1
    total = int(rows[0][10]) if rows else 0
    truncated = shown < total
    if truncated:
        notes.append(
            f"Showing {shown} of {total} uses in {total_files} files; raise limit "
            "or per_file, or narrow with path_glob, directory or kind."
        )
    if not rows and not definitions:
        notes.append(
            f"`{short}` is neither defined nor used in the indexed code; "
            "find_symbol with match='fuzzy' finds similar names."
        )
    return ReferenceSearch(
        query=query,
        name=short,
        definitions=definitions,
        files=list(grouped.values()),
        total_references=total,
        total_files=total_files,
        truncated=truncated,
        notes=notes,
    )


# --- file_outline ------------------------------------------------------------


@dataclass
class OutlineNode:
    """One definition of the file with the definitions nested in it."""

    name: str
    qualified_name: str
    kind: str
    signature: str
    start_line: int
    end_line: int
    children: list[OutlineNode] = field(default_factory=list)


@dataclass
class FileOutline:
    """A file's definitions as a tree, without bodies."""

    repository: str
    file_path: str
    language: str
    lines: int | None
    symbols: list[OutlineNode]
    total: int
    stale: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _file_resolve(
    *, alias: str, path: str, repository: str | None
) -> tuple[int, str, str, str, str, int, float]:
    """Return the indexed file a path names, or raise UnknownFile."""
    where, params = _filters(
        alias=alias, repository=repository, language=None, path_glob=None
    )
    candidates = []
    if os.path.isabs(path):
        rows = _fetch(alias, "SELECT path FROM repositories", {})
        for (root,) in rows:
            if path == root or path.startswith(root.rstrip("/") + "/"):
                candidates.append(os.path.relpath(path, root))
        if not candidates:
            raise UnknownFile(
                f"{path} is outside every repository of this project; give a path "
                "relative to its repository (as search results show it)."
            )
    else:
        relative = os.path.normpath(path)
        if relative.startswith("..") or relative == ".":
            raise InvalidSearchQuery(
                f"path {path!r} leaves the repository; give a file path inside it, "
                "e.g. `src/app/models.py`."
            )
        candidates.append(relative)
    params["paths"] = candidates
    rows = _fetch(
        alias,
        "SELECT c.id, c.relative_path, r.path, c.language, c.sha256, c.size_bytes, "
        "c.mtime FROM code_files c JOIN repositories r ON r.id = c.repository_id "
        f"WHERE c.relative_path = ANY(%(paths)s) AND {where} ORDER BY r.path",
        params,
    )
    if len(rows) > 1:
        raise InvalidSearchQuery(
            f"{path} is indexed in {len(rows)} repositories ("
            + ", ".join(row[2] for row in rows)
            + "); pass repository to pick one."
        )
    if rows:
        return rows[0]
    base = os.path.basename(candidates[0])
    params["like"] = "%/" + like_escape(base)
    params["base"] = base
    similar = _fetch(
        alias,
        "SELECT c.relative_path FROM code_files c WHERE (c.relative_path LIKE %(like)s "
        f"OR c.relative_path = %(base)s) AND {where} ORDER BY c.relative_path LIMIT 5",
        params,
    )
    hint = (
        "; indexed files with that name: " + ", ".join(row[0] for row in similar)
        if similar
        else "; it is not indexed (ignored, too large, or not indexed yet)"
    )
    raise UnknownFile(f"No indexed file {path!r} in this project{hint}.")


def file_outline(
    *, project: Project, path: str, repository: str | None = None
) -> FileOutline:
    """Return the definitions of one indexed file as a tree, without bodies."""
    path = _name_clean(path, what="path")
    alias, notes = _prepare(project=project)
    file_id, relative, repo_path, language, sha, size, mtime = _file_resolve(
        alias=alias, path=path, repository=repository
    )
    rows = _fetch(
        alias,
        "SELECT name, qualified_name, kind, parent, signature, start_line, end_line "
        "FROM code_symbols WHERE file_id = %(file)s ORDER BY start_line, end_line DESC",
        {"file": file_id},
    )
    nodes: dict[str, OutlineNode] = {}
    roots: list[OutlineNode] = []
    for name, qualified, kind, parent, signature, start, end in rows:
        node = OutlineNode(
            name=name,
            qualified_name=qualified,
            kind=kind,
            signature=signature,
            start_line=start,
            end_line=end,
        )
        holder = nodes.get(parent) if parent else None
        (holder.children if holder is not None else roots).append(node)
        nodes.setdefault(qualified, node)
    files = FileCache()
    absolute = os.path.join(repo_path, relative)
    stale = files.stale(absolute, sha, size, mtime)
    lines = None if stale else files.lines(absolute)
    if not rows and language == "text":
        notes.append(f"{relative} is not code the indexer parses; it has no outline.")
    return FileOutline(
        repository=repo_path,
        file_path=relative,
        language=language,
        lines=len(lines) if lines is not None else None,
        symbols=roots,
        total=len(rows),
        stale=stale,
        notes=notes,
    )


# --- file text -----------------------------------------------------------------


@dataclass
class FileText:
    """Lines of an indexed file as they were indexed, and whether it changed since."""

    repository: str
    file_path: str
    language: str
    start_line: int
    end_line: int
    lines: int
    text: str
    stale: bool


def file_text_read(
    *,
    project: Project,
    path: str,
    repository: str | None = None,
    start_line: int = 1,
    end_line: int | None = None,
) -> FileText:
    """Return lines start_line..end_line of an indexed file, from the index."""
    if (
        isinstance(start_line, bool)
        or not isinstance(start_line, int)
        or start_line < 1
    ):
        raise InvalidSearchQuery("start_line must be an integer of 1 or more.")
    if end_line is not None and (
        isinstance(end_line, bool)
        or not isinstance(end_line, int)
        or end_line < start_line
    ):
        raise InvalidSearchQuery("end_line must be an integer from start_line on.")
    alias, _ = _prepare(project=project)
    file_id, relative, root, language, sha256, size, mtime = _file_resolve(
        alias=alias,
        path=_name_clean(path, what="path")
        if not os.path.isabs(path)
        else filter_clean("path", path),
        repository=repository,
    )
    rows = _fetch(
        alias,
        "SELECT string_agg(content, '' ORDER BY first_line) FROM code_text_segments "
        "WHERE file_id = %(id)s",
        {"id": file_id},
    )
    if not rows or rows[0][0] is None:
        raise UnknownFile(
            f"{relative} was indexed before file texts were kept; index its "
            "repository again to read it here."
        )
    lines = rows[0][0].splitlines()
    if start_line > max(len(lines), 1):
        raise InvalidSearchQuery(
            f"{relative} has {len(lines)} lines; start_line {start_line} is past its end."
        )
    last = min(end_line or len(lines), len(lines))
    stale = FileCache().stale(os.path.join(root, relative), sha256, size, mtime)
    return FileText(
        repository=root,
        file_path=relative,
        language=language,
        start_line=start_line,
        end_line=last,
        lines=len(lines),
        text="\n".join(lines[start_line - 1 : last]),
        stale=stale,
    )
