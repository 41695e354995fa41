"""grep_code over real indexed texts: the two stages apart, then together."""

import json
import os
import textwrap
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from indexing.models import SEGMENT_LINES, CodeFile, CodeTextSegment
from indexing.services import repository_index
from indexing.storing import text_segments
from registry.services import project_alias
from search.exceptions import InvalidSearchQuery, UnknownLanguage
from search.grep import code_grep, pattern_compile, pattern_literals, text_match_lines

# --- stage 1: the literals a pattern requires ------------------------------


@pytest.mark.parametrize(
    ("pattern", "regex", "caseless", "expected"),
    [
        ("parse_header", False, False, [{"parse_header"}]),
        ("a.b", False, False, [{"a.b"}]),
        ("ab", False, False, []),
        (r"def\s+parse_\w+", True, False, [{"parse_"}, {"def"}]),
        (r"foo|barbaz", True, False, [{"foo", "barbaz"}]),
        (r"(?:get|set)_value", True, False, [{"_value"}, {"get", "set"}]),
        (r"x(abc)+y", True, False, [{"abc"}]),
        (r"x(abc)*y", True, False, []),
        (r"colou?r", True, False, [{"colo"}]),
        (r".*", True, False, []),
        (r"a|.", True, False, []),
        (r"foo|.", True, False, []),
        (r"[abc]+def", True, False, [{"def"}]),
        ("Grüße_Welt", False, True, [{"e_Welt"}]),
        (r"(unclosed", True, False, []),
    ],
)
def test_pattern_literals_are_what_every_match_contains(
    pattern, regex, caseless, expected
):
    found = pattern_literals(pattern=pattern, regex=regex, case_insensitive=caseless)
    assert [set(s) for s in found] == expected


def test_an_inline_caseless_flag_makes_the_lookup_caseless():
    assert pattern_compile(
        pattern="(?i)Parse", regex=True, case_sensitive=True, whole_word=False
    ).case_insensitive
    assert not pattern_compile(
        pattern="Parse(?i)", regex=False, case_sensitive=True, whole_word=False
    ).case_insensitive


# --- stage 2: lines of one text ---------------------------------------------


def _lines(pattern: str, text: str, *, regex=True, limit=100, **flags):
    compiled = pattern_compile(
        pattern=pattern,
        regex=regex,
        case_sensitive=flags.get("case_sensitive", True),
        whole_word=flags.get("whole_word", False),
    )
    found, count = text_match_lines(text=text.encode(), compiled=compiled, limit=limit)
    return [line for line, *_ in found], count


def test_lines_match_as_ripgrep_matches_them():
    text = "alpha beta\nbeta\n\ngamma alpha\n"
    assert _lines("alpha", text) == ([1, 4], 2)
    assert _lines("^beta$", text) == ([2], 1)
    assert _lines("^$", text) == ([3], 1)
    # Every line, once, and no phantom line after the last line break.
    assert _lines("a*", text) == ([1, 2, 3, 4], 4)
    # A match never spans a line break.
    assert _lines(r"beta\s+beta", text) == ([], 0)
    assert _lines(r"beta\s*", text) == ([1, 2], 2)
    assert _lines("ALPHA", text, case_sensitive=False) == ([1, 4], 2)
    assert _lines("alph", text, whole_word=True) == ([], 0)
    assert _lines("a.b", "a.b\naxb\n", regex=False) == ([1], 1)


def test_the_listed_lines_stop_at_the_limit_but_all_are_counted():
    text = "x\n" * 1000
    assert _lines("x", text, limit=3) == ([1, 2, 3], 1000)


def test_catastrophic_backtracking_is_linear_in_re2():
    text = ("a" * 5000 + "b\n") * 20
    started = time.monotonic()
    assert _lines(r"(a+)+$", text) == ([], 0)
    assert _lines(r"(a|aa)+c", text) == ([], 0)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("pattern", "regex", "message"),
    [
        ("", False, "empty"),
        ("a\x00b", False, "NUL"),
        ("x" * 2001, False, "2001 characters"),
        ("one\ntwo", False, "line break"),
        ("(unclosed", True, "not a valid regex"),
        ("(?<=look)behind", True, "not a valid regex"),
        ("\ud800", False, "not valid Unicode"),
        (r"((((a{1000}){1000}){1000}){1000})", True, "regex"),
    ],
)
def test_bad_patterns_are_refused_with_what_to_do(pattern, regex, message):
    with pytest.raises(InvalidSearchQuery, match=message):
        pattern_compile(
            pattern=pattern, regex=regex, case_sensitive=True, whole_word=False
        )


# --- both stages over an indexed project -----------------------------------

FILES = {
    "app/parsing.py": '''
        """Header parsing."""
        import re


        class Parser:
            def parse_header(self, line):
                # parse_header is also named in this comment
                return re.match(r"^(\\w+):", line)


        def parse_all(lines):
            return [Parser().parse_header(line) for line in lines]
        ''',
    "app/web/views.js": """
        function renderHeader(header) {
          return `<h1>${header}</h1>`;
        }
        export { renderHeader };
        """,
    "docs/notes.md": """
        # Notes
        The Parser reads a HEADER line; parse_header returns a match.
        """,
}


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def indexed(project_factory, repo):
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    return project


def _where(result) -> list[tuple[str, int]]:
    return [(f.file_path, m.line) for f in result.files for m in f.matches]


def test_a_literal_is_found_in_every_file_with_its_definition(indexed):
    result = code_grep(project=indexed, pattern="parse_header")
    assert result.indexed
    assert _where(result) == [
        ("app/parsing.py", 6),
        ("app/parsing.py", 7),
        ("app/parsing.py", 12),
        ("docs/notes.md", 2),
    ]
    assert (result.files_matched, result.matches, result.totals_exact) == (2, 4, True)
    first = result.files[0].matches[0]
    assert first.text == "    def parse_header(self, line):"
    assert first.column == 9
    assert (first.symbol, first.symbol_kind) == ("Parser.parse_header", "method")
    assert result.files[0].matches[2].symbol == "parse_all"
    assert result.files[1].matches[0].symbol is None
    assert not result.truncated and result.notes == []


def test_regex_case_and_whole_word_options(indexed):
    found = code_grep(project=indexed, pattern=r"render\w+\(", regex=True)
    assert _where(found) == [("app/web/views.js", 1)]
    caseless = code_grep(project=indexed, pattern="header", case_sensitive=False)
    assert ("docs/notes.md", 2) in _where(caseless)
    assert ("app/web/views.js", 4) in _where(caseless)
    sensitive = code_grep(project=indexed, pattern="HEADER")
    assert _where(sensitive) == [("docs/notes.md", 2)]
    word = code_grep(project=indexed, pattern="header", whole_word=True)
    assert _where(word) == [("app/web/views.js", 1), ("app/web/views.js", 2)]


def test_filters_narrow_the_files(indexed):
    def files(**filters):
        result = code_grep(project=indexed, pattern="eader", **filters)
        return sorted({f.file_path for f in result.files})

    assert files(language="python") == ["app/parsing.py"]
    assert files(file_type="md") == ["docs/notes.md"]
    assert files(directory="app/web") == ["app/web/views.js"]
    assert files(path_glob="app/**/*.js") == ["app/web/views.js"]
    with pytest.raises(UnknownLanguage, match="Unknown language 'klingon'"):
        code_grep(project=indexed, pattern="eader", language="klingon")


def test_context_lines_and_caps_with_totals(indexed):
    result = code_grep(project=indexed, pattern="parse_header", context_lines=1)
    match = result.files[0].matches[0]
    assert match.context_before == ["class Parser:"]
    assert match.context_after == [
        "        # parse_header is also named in this comment"
    ]
    capped = code_grep(project=indexed, pattern="parse_header", max_per_file=1)
    assert [len(f.matches) for f in capped.files] == [1, 1]
    assert [f.total for f in capped.files] == [3, 1]
    assert capped.truncated and capped.matches == 4 and capped.matches_shown == 2
    assert any("Showing 2 of 4" in note for note in capped.notes)
    first = code_grep(project=indexed, pattern="parse_header", max_matches=1)
    assert _where(first) == [("app/parsing.py", 6)]
    assert first.matches == 4 and first.files_matched == 2


def test_an_unindexable_pattern_runs_unindexed_and_says_so(indexed):
    result = code_grep(project=indexed, pattern=r"^.{0,2}$", regex=True)
    assert not result.indexed
    assert result.candidate_files == 3
    assert any("ran unindexed" in note for note in result.notes)
    assert ("app/parsing.py", 4) in _where(result)


def test_a_pattern_matching_every_line_gets_a_bounded_answer(project_factory, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    for number in range(20):
        (root / f"m{number}.py").write_text("value = 1\n" * 5000)
    project = project_factory()
    repository_index(project=project, repo_path=str(root), embed=False)
    started = time.monotonic()
    result = code_grep(project=project, pattern=".", regex=True, max_matches=50)
    assert time.monotonic() - started < 5
    assert result.matches_shown == 50 and result.truncated
    assert result.matches >= 50
    assert len(result.files[0].matches) == 20


@pytest.mark.parametrize(
    "text", ["", "a", "a\n", "\n\n", "a\nb", "a\nb\n", "x\n" * 400, "x\n" * 401 + "y"]
)
def test_segments_are_runs_of_lines_that_join_to_the_text(text):
    segments = text_segments(text)
    assert "".join(content for _, content in segments) == text
    assert [first for first, _ in segments] == [
        1 + SEGMENT_LINES * n for n in range(len(segments))
    ]
    # Every segment but the last holds SEGMENT_LINES whole lines.
    assert all(content.count("\n") == SEGMENT_LINES for _, content in segments[:-1])


def test_lines_across_segments_keep_their_numbers_totals_and_context(
    project_factory, tmp_path
):
    root = tmp_path / "long"
    root.mkdir()
    lines = [f"line_{n} = {n}" for n in range(1, 451)]
    lines[SEGMENT_LINES - 1] = "marker_near_the_end = 1"
    lines[SEGMENT_LINES] = "marker_at_the_start = 2"
    (root / "long.py").write_text("\n".join(lines) + "\n")
    project = project_factory()
    repository_index(project=project, repo_path=str(root), embed=False)
    assert CodeTextSegment.objects.using(project_alias(project=project)).count() == 3
    result = code_grep(project=project, pattern="marker_", context_lines=2)
    [found] = result.files
    assert [(m.line, m.column) for m in found.matches] == [
        (SEGMENT_LINES, 1),
        (SEGMENT_LINES + 1, 1),
    ]
    first, second = found.matches
    assert first.context_after == ["marker_at_the_start = 2", "line_202 = 202"]
    assert second.context_before == ["line_199 = 199", "marker_near_the_end = 1"]
    counted = code_grep(project=project, pattern=r"^line_\d+ =", regex=True)
    assert counted.matches == 448 and counted.totals_exact
    last = code_grep(project=project, pattern="line_450", context_lines=3)
    assert last.files[0].matches[0].context_after == []
    per_file = code_grep(project=project, pattern="line_", max_per_file=5)
    assert [m.line for m in per_file.files[0].matches] == [1, 2, 3, 4, 5]
    assert per_file.files[0].total == 448


def test_the_migration_splits_stored_texts_as_the_indexer_does(
    project_factory, tmp_path
):
    alias = project_alias(project=project_factory())
    texts = ["", "one", "one\n", "a\nb\n\n", "x\n" * 400, "y\n" * 399 + "z", "\n" * 201]
    call_command(
        "migrate", "indexing", "0005", database=alias, interactive=False, verbosity=0
    )
    with connections[alias].cursor() as cursor:
        # The schema of 0005: no model of today's code may write to it.
        cursor.execute(
            "INSERT INTO repositories (id, path, name, created_at) "
            "VALUES (gen_random_uuid(), '/r', 'r', now()) RETURNING id"
        )
        [repository_id] = cursor.fetchone()
        for number, text in enumerate(texts):
            file = CodeFile.objects.using(alias).create(
                repository_id=repository_id,
                relative_path=f"f{number}.txt",
                language="text",
                size_bytes=len(text),
                sha256="",
                mtime=0.0,
                indexed_at=timezone.now(),
                analysis_version=2,
            )
            cursor.execute(
                "INSERT INTO code_file_texts (file_id, content) VALUES (%s, %s)",
                [file.id, text],
            )
    call_command("migrate", "indexing", database=alias, interactive=False, verbosity=0)
    stored = {}
    for segment in CodeTextSegment.objects.using(alias).order_by("first_line"):
        stored.setdefault(segment.file.relative_path, []).append(
            (segment.first_line, segment.content)
        )
    assert stored == {
        f"f{number}.txt": text_segments(text) for number, text in enumerate(texts)
    }


def test_the_scan_stops_at_its_time_budget(project_factory, tmp_path, settings):
    root = tmp_path / "slow"
    root.mkdir()
    for number in range(200):
        (root / f"m{number}.py").write_text("value = 1\n" * 200)
    project = project_factory()
    repository_index(project=project, repo_path=str(root), embed=False)
    settings.GREP_TIMEOUT_SECONDS = 0.0
    result = code_grep(project=project, pattern="value", max_matches=10)
    assert not result.totals_exact
    assert any("Stopped after" in note for note in result.notes)


def test_matches_of_a_changed_file_are_stale_until_indexed_again(indexed, repo):
    path = repo / "docs" / "notes.md"
    path.write_text("# Notes\nnothing here\n")
    os.utime(path, (1, 1))
    result = code_grep(project=indexed, pattern="parse_header")
    notes_file = next(f for f in result.files if f.file_path == "docs/notes.md")
    assert notes_file.stale
    assert any("changed on disk" in note for note in result.notes)
    repository_index(project=indexed, repo_path=str(repo), embed=False)
    again = code_grep(project=indexed, pattern="parse_header")
    assert [f.file_path for f in again.files] == ["app/parsing.py"]
    assert not any(f.stale for f in again.files)


def test_a_changed_file_replaces_its_text_and_a_deleted_one_loses_it(indexed, repo):
    alias = project_alias(project=indexed)
    (repo / "app" / "web" / "views.js").write_text("const renamed = 1;\n")
    (repo / "docs" / "notes.md").unlink()
    repository_index(project=indexed, repo_path=str(repo), embed=False)
    assert _where(code_grep(project=indexed, pattern="renamed")) == [
        ("app/web/views.js", 1)
    ]
    assert code_grep(project=indexed, pattern="renderHeader").files == []
    assert set(CodeTextSegment.objects.using(alias).values_list("file", flat=True)) == {
        *CodeFile.objects.using(alias).values_list("id", flat=True)
    }
    assert CodeFile.objects.using(alias).count() == 2


def test_files_indexed_before_texts_are_named_in_a_note(indexed):
    alias = project_alias(project=indexed)
    CodeFile.objects.using(alias).filter(relative_path="docs/notes.md").update(
        analysis_version=1
    )
    CodeTextSegment.objects.using(alias).filter(
        file__relative_path="docs/notes.md"
    ).delete()
    result = code_grep(project=indexed, pattern="parse_header")
    assert [f.file_path for f in result.files] == ["app/parsing.py"]
    assert any("1 files were indexed before grep_code" in n for n in result.notes)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"context_lines": 11}, "context_lines must be an integer from 0 to 10"),
        ({"max_matches": 0}, "max_matches must be an integer"),
        ({"regex": "yes"}, "regex must be true or false"),
        ({"directory": "../etc"}, "directory must be a path inside"),
        ({"file_type": "/"}, "not a file extension"),
    ],
)
def test_bad_arguments_are_refused(indexed, arguments, message):
    with pytest.raises(InvalidSearchQuery, match=message):
        code_grep(project=indexed, pattern="parse_header", **arguments)


# --- the command --------------------------------------------------------------


def test_the_grep_command_prints_ripgrep_lines_and_json(indexed):
    out = StringIO()
    call_command(
        "grep",
        "parse_h",
        "--project",
        indexed.name,
        "-C",
        "0",
        stdout=out,
        stderr=StringIO(),
    )
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("app/parsing.py:6:    def parse_header(self, line):")
    assert len(lines) == 4
    out = StringIO()
    call_command(
        "grep",
        r"HEAD\w+",
        "-e",
        "-i",
        "--project",
        indexed.name,
        "--json",
        stdout=out,
    )
    payload = json.loads(out.getvalue())
    assert payload["regex"] and not payload["case_sensitive"]
    assert payload["matches"] >= 5
    with pytest.raises(CommandError, match="not a valid regex"):
        call_command("grep", "(x", "-e", "--project", indexed.name)
