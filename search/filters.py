"""Check what a search was given, and turn its filters into SQL on code_chunks.

Every text a caller sends is checked here before it reaches PostgreSQL or
the tokenizer: NUL bytes, lone surrogates and oversized values are refused
with a message that says what to send instead.
"""

from __future__ import annotations

import re

from indexing.chunking import LANGUAGE_BY_EXTENSION
from indexing.selectors import repository_find
from search.exceptions import InvalidSearchQuery, UnknownLanguage

MAX_QUERY_CHARS = 2000
MAX_FILTER_CHARS = 1000


def known_languages() -> frozenset[str]:
    """Return every language name the indexer records."""
    return frozenset(LANGUAGE_BY_EXTENSION.values()) | {"text"}


def _check_encodable(name: str, text: str) -> None:
    # JSON can carry lone surrogates ("\ud800"); neither PostgreSQL nor the
    # tokenizer can take them, and they would fail deep inside either.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSearchQuery(
            f"The {name} holds characters that are not valid Unicode (lone "
            "surrogates); send UTF-8 text."
        ) from None


def query_clean(query: object) -> str:
    if not isinstance(query, str):
        raise InvalidSearchQuery("The query must be text.")
    _check_encodable("query", query)
    cleaned = query.replace("\x00", " ").strip()
    if not cleaned:
        raise InvalidSearchQuery(
            "The query is empty; describe what you look for, e.g. "
            "'where is the retry logic for HTTP requests'."
        )
    if len(cleaned) > MAX_QUERY_CHARS:
        raise InvalidSearchQuery(
            f"The query has {len(cleaned)} characters; keep it under "
            f"{MAX_QUERY_CHARS} (a sentence or a few identifiers work best)."
        )
    return cleaned


def filter_clean(name: str, value: object) -> str | None:
    """Return a filter's text, or raise InvalidSearchQuery if no column can hold it."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSearchQuery(f"{name} must be text.")
    # PostgreSQL text cannot hold NUL, and os.path refuses it.
    if "\x00" in value:
        raise InvalidSearchQuery(f"{name} must not contain NUL bytes.")
    if len(value) > MAX_FILTER_CHARS:
        raise InvalidSearchQuery(
            f"{name} has {len(value)} characters; keep it under {MAX_FILTER_CHARS}."
        )
    _check_encodable(name, value)
    return value


_ANY_DIRS, _ANYTHING, _ANY_NAME = "(.*/)?", ".*", "[^/]*"


def _add_wildcard(out: list[str], token: str) -> None:
    """Append a wildcard, merged with a wildcard right before it.

    Adjacent wildcards match no more than the wider one, but each adds to the
    time PostgreSQL spends compiling the pattern: "**" * 500 took seconds.
    """
    last = out[-1]
    if last == token:
        return
    if _ANYTHING in (last, token) and last in (_ANY_DIRS, _ANYTHING, _ANY_NAME):
        out[-1] = _ANYTHING
        return
    out.append(token)


def path_glob_regex(glob: str) -> str:
    """Translate a path glob (`**`, `*`, `?`) into an anchored POSIX regex."""
    out = ["^"]
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            _add_wildcard(out, _ANY_DIRS)
            i += 3
            continue
        if glob.startswith("**", i):
            _add_wildcard(out, _ANYTHING)
            i += 2
            continue
        if char == "*":
            _add_wildcard(out, _ANY_NAME)
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    return "".join(out)


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def repository_resolve(*, alias: str, repository: str) -> str:
    return str(repository_find(alias=alias, reference=repository).id)


def chunk_filter_sql(
    *,
    alias: str,
    repository: str | None,
    language: str | None,
    file_type: str | None,
    directory: str | None,
    path_glob: str | None,
) -> tuple[str, dict[str, object]]:
    """Return a SQL condition on `c` (code_chunks or code_files) and its parameters.

    Each filter is checked first (filter_clean): a value no column can hold
    is refused with its name.
    """
    repository = filter_clean("repository", repository)
    language = filter_clean("language", language)
    file_type = filter_clean("file_type", file_type)
    directory = filter_clean("directory", directory)
    path_glob = filter_clean("path_glob", path_glob)
    clauses: list[str] = []
    params: dict[str, object] = {}

    def param(value: object) -> str:
        name = f"f{len(params)}"
        params[name] = value
        return f"%({name})s"

    if repository:
        resolved = repository_resolve(alias=alias, repository=repository)
        clauses.append(f"c.repository_id = {param(resolved)}")
    if language:
        name = language.strip().lower()
        if name not in known_languages():
            known = ", ".join(sorted(known_languages()))
            raise UnknownLanguage(
                f"Unknown language {language!r}; use one of: {known}."
            )
        clauses.append(f"c.language = {param(name)}")
    if file_type:
        extension = file_type.strip().lstrip("*").lstrip(".")
        if not extension or "/" in extension:
            raise InvalidSearchQuery(
                f"file_type {file_type!r} is not a file extension; use e.g. 'py' or '.ts'."
            )
        clauses.append(f"c.relative_path LIKE {param('%.' + like_escape(extension))}")
    if directory:
        prefix = directory.strip().strip("/")
        if prefix.startswith("..") or "/../" in f"/{prefix}/":
            raise InvalidSearchQuery("directory must be a path inside the repository.")
        if prefix and prefix != ".":
            pattern = like_escape(prefix) + "/%"
            clauses.append(f"c.relative_path LIKE {param(pattern)}")
    if path_glob:
        clauses.append(f"c.relative_path ~ {param(path_glob_regex(path_glob.strip()))}")
    return (" AND ".join(clauses) or "TRUE"), params
