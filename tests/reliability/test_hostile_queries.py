"""Hostile search input gets a clear error or a safe result, never a crash."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from indexing.models import CodeChunk
from indexing.services import repository_index
from registry.services import project_alias
from search.exceptions import InvalidSearchQuery, UnknownLanguage, UnknownRepository
from search.filters import MAX_QUERY_CHARS, path_glob_regex
from search.selectors import MAX_LIMIT, MODES, chunk_search

DOMAIN_ERRORS = (InvalidSearchQuery, UnknownLanguage, UnknownRepository)

SOURCE = textwrap.dedent('''
    def drop_table_if_exists(cursor, name):
        """Drop a table by name; the caller quotes it."""
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


    class TokenBucket:
        def take(self, amount=1):
            """Take tokens, refusing when the bucket is empty."""
            if self.tokens < amount:
                return False
            self.tokens -= amount
            return True
    ''')

SQL_METACHARACTERS = [
    "'; DROP TABLE code_chunks; --",
    '"; DROP TABLE code_chunks; --',
    "1' OR '1'='1",
    "%(kq)s",
    "%s %s %s",
    "{}",
    "\\' \\\\",
    "$$; SELECT pg_sleep(10); $$",
    "/* comment */ token",
    "table_name; DELETE FROM code_files",
]
TSQUERY_SYNTAX = [
    "a & | b",
    "!!!",
    '"unterminated',
    "<->",
    "a <-> b <2> c",
    "(((",
    ")))",
    "a:*",
    "a:ABCD",
    "&",
    "|",
    "!",
    "-",
    "- -",
    "--",
    '""',
    '" "',
    "or",
    "OR OR OR",
    "x or -y",
    "'",
    "''''",
    "\\",
    ":",
    "a & !b | (c <-> d)",
]
UNICODE = [
    "función de reintento",
    "重试 请求",
    "تحقق من الرمز",
    "e\u0301\u0301\u0301",
    "🔥 token bucket 🔥",
    "\u200b\u200d\ufeff",
    "Ǆ ß İ ﬃ",
    "\U0010ffff",
    "token\x00bucket",
    "\t\n\r\x0b\x0c",
]


@pytest.fixture
def indexed(project_factory, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tables.py").write_text(SOURCE)
    project = project_factory()
    repository_index(project=project, repo_path=str(repo))
    return project, repo


def search_safely(project, **kwargs):
    """Return the response or the domain error raised; anything else fails."""
    try:
        return chunk_search(project=project, **kwargs)
    except DOMAIN_ERRORS as exc:
        assert str(exc).strip()
        return exc


def test_sql_metacharacters_and_tsquery_syntax_are_harmless(indexed):
    project, _ = indexed
    alias = project_alias(project=project)
    chunks = CodeChunk.objects.using(alias).count()
    for mode in MODES:
        for query in SQL_METACHARACTERS + TSQUERY_SYNTAX + UNICODE:
            outcome = search_safely(project, query=query, mode=mode)
            if isinstance(outcome, Exception):
                assert isinstance(outcome, InvalidSearchQuery), (query, outcome)
            else:
                assert outcome.total_count == len(outcome.results) <= 10
    assert CodeChunk.objects.using(alias).count() == chunks
    found = chunk_search(project=project, query="drop table", mode="keyword")
    assert found.results[0].symbol == "drop_table_if_exists"


def test_empty_and_oversized_queries_are_refused_clearly(indexed):
    project, _ = indexed
    for query in ("", "   ", "\x00\x00", "\n\t"):
        with pytest.raises(InvalidSearchQuery, match="empty"):
            chunk_search(project=project, query=query)
    for size in (MAX_QUERY_CHARS + 1, 100_000):
        with pytest.raises(InvalidSearchQuery, match=str(MAX_QUERY_CHARS)):
            chunk_search(project=project, query="token " * (size // 6 + 1))
    at_limit = ("bucket " * MAX_QUERY_CHARS)[:MAX_QUERY_CHARS]
    assert chunk_search(project=project, query=at_limit, mode="keyword").results
    with pytest.raises(InvalidSearchQuery, match="text"):
        chunk_search(project=project, query=None)
    with pytest.raises(InvalidSearchQuery, match="text"):
        chunk_search(project=project, query=b"bytes")


def test_text_that_cannot_be_encoded_is_refused_not_crashed(indexed):
    project, _ = indexed
    fields = ("query", "repository", "language", "file_type", "directory", "path_glob")
    for field in fields:
        arguments = {"query": "token bucket", field: "bucket\ud800"}
        with pytest.raises(InvalidSearchQuery, match="not valid Unicode"):
            chunk_search(project=project, **arguments)


HOSTILE_FILTERS = [
    ("repository", "repo\x00", "NUL"),
    ("repository", "/" + "a" * 900, "No repository"),
    ("repository", "../../../../etc/passwd", "No repository"),
    ("language", "python\x00", "NUL"),
    ("language", "python'; --", "Unknown language"),
    ("file_type", "py\x00", "NUL"),
    ("file_type", "../py", "not a file extension"),
    ("directory", "pkg\x00", "NUL"),
    ("directory", "../../etc", "inside the repository"),
    ("path_glob", "**/*.py\x00", "NUL"),
    ("path_glob", "**" * 2000, "under 1000"),
]


def test_hostile_filters_get_clear_errors(indexed):
    project, _ = indexed
    for field, value, message in HOSTILE_FILTERS:
        with pytest.raises(DOMAIN_ERRORS, match=message):
            chunk_search(
                project=project, query="token bucket", mode="keyword", **{field: value}
            )
    for field, value in [
        ("path_glob", "[" * 100),
        ("path_glob", "(" * 100 + "*"),
        ("directory", "%"),
        ("file_type", "%"),
        ("directory", "_"),
    ]:
        outcome = chunk_search(
            project=project, query="token bucket", mode="keyword", **{field: value}
        )
        assert outcome.results == [], (field, value)
    # Runs of wildcards collapse: PostgreSQL took seconds to compile "**" * 499.
    for glob, regex in [("**" * 499, "^.*$"), ("*" * 999, "^.*$"), ("**/" * 333, None)]:
        assert regex is None or path_glob_regex(glob) == regex
        found = chunk_search(
            project=project, query="token bucket", mode="keyword", path_glob=glob
        )
        assert bool(found.results) == (regex is not None)


filter_text = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(
        ["python", "PYTHON", " py ", ".py", "*.py", "/", "..", "../..", "tables.py"]
        + ["a\x00b", "\ud800", "%", "_", "\\", "**/" * 40, "x" * 1001]
    ),
)


@hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=st.one_of(
        st.text(max_size=60),
        st.sampled_from(SQL_METACHARACTERS + TSQUERY_SYNTAX + UNICODE),
        st.text(alphabet="&|!<->():*'\"\\ ab", max_size=30),
    ),
    limit=st.one_of(st.integers(-5, MAX_LIMIT + 5), st.just(10**12), st.booleans()),
    mode=st.one_of(st.sampled_from(MODES), st.text(max_size=10)),
    repository=filter_text,
    language=filter_text,
    file_type=filter_text,
    directory=filter_text,
    path_glob=filter_text,
    max_tokens=st.one_of(st.none(), st.integers(-10, 500)),
)
def test_chunk_search_raises_only_documented_errors(
    indexed,
    query,
    limit,
    mode,
    repository,
    language,
    file_type,
    directory,
    path_glob,
    max_tokens,
):
    project, _ = indexed
    outcome = search_safely(
        project,
        query=query,
        limit=limit,
        mode=mode,
        repository=repository,
        language=language,
        file_type=file_type,
        directory=directory,
        path_glob=path_glob,
        max_tokens=max_tokens,
    )
    if not isinstance(outcome, Exception):
        assert len(outcome.results) <= limit
        assert outcome.mode == mode
