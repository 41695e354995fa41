"""grep_code against ripgrep on the Django source: the same (file, line) matches.

ripgrep runs over exactly the files the project indexed. RE2's `\\w`, `\\d`,
`\\s` and `\\b` are ASCII, ripgrep's are Unicode unless told otherwise: for
patterns that use them ripgrep gets --no-unicode. That is the one dialect
difference the patterns touch, and it is removed on purpose rather than
avoided by luck. Differences left out
of the pattern set (documented in docs/grep.md): look-around and
back-references (RE2 refuses them; ripgrep needs --pcre2 for them too),
Unicode classes such as `\\p{Greek}` (RE2 has them, Python's parser that
narrows does not; they run unindexed).
"""

import re
import shutil
import subprocess
from pathlib import Path

import django
import pytest

from indexing.models import CodeFile
from indexing.services import repository_index
from registry.services import project_alias
from search.grep import MAX_MATCHES, code_grep

RIPGREP = shutil.which("rg")

# (class, pattern, options): options are grep_code's; ripgrep gets the same
# as flags. Each stays under MAX_MATCHES lines so both lists are complete.
PATTERNS = [
    ("literal", "get_object_or_404", {}),
    ("literal", "ImproperlyConfigured", {}),
    ("literal", "def __init__(self", {}),
    ("literal", "raise ValueError(", {}),
    ("literal", "' % (", {}),
    ("short literal", "{{", {}),
    ("literal", "TODO", {}),
    ("literal", "import os", {}),
    ("case-insensitive", "queryset", {"case_sensitive": False}),
    ("case-insensitive", "deprecat", {"case_sensitive": False}),
    ("case-insensitive", "Utf-8", {"case_sensitive": False}),
    ("whole-word", "cls", {"whole_word": True}),
    ("whole-word", "using", {"whole_word": True}),
    ("whole-word", "get", {"whole_word": True}),
    ("class", r"def [a-z]+_[a-z]+\(", {"regex": True}),
    ("class", r"[A-Z][a-z]+Error\b", {"regex": True}),
    ("class", r"\d{4}-\d{2}-\d{2}", {"regex": True}),
    ("class", r"0x[0-9a-fA-F]+", {"regex": True}),
    ("alternation", r"raise (TypeError|ValueError)", {"regex": True}),
    ("alternation", r"(?:get|set)attr\(", {"regex": True}),
    ("alternation", r"import (json|re|os)$", {"regex": True}),
    ("alternation", r"(?i)(select|insert) into", {"regex": True}),
    ("anchor", r"^class \w+\(models\.Model\)", {"regex": True}),
    ("anchor", r"^\s*@property$", {"regex": True}),
    ("anchor", r"^from \.\. import", {"regex": True}),
    ("unindexable", r"^.{150,}$", {"regex": True}),
    ("unindexable", r"\)\)$", {"regex": True}),
    ("unindexable", r"[{}]\s*$", {"regex": True}),
    ("unindexable", r"^\s+#", {"regex": True, "directory": "contrib/admin"}),
    ("unindexable", r"a|.", {"regex": True, "directory": "db/backends/sqlite3"}),
]


def _ripgrep(root: Path, files: list[str], pattern: str, options: dict) -> set:
    flags = ["-n", "--no-heading", "--with-filename", "--no-config"]
    if options.get("regex") and re.search(r"\\[wWdDsSbB]", pattern):
        # RE2's Perl classes are ASCII; ripgrep's are Unicode unless told.
        # Without them both read `.` and [...] as code points: no flag then,
        # since --no-unicode would make `.` match a single byte.
        flags.append("--no-unicode")
    if not options.get("regex"):
        flags.append("-F")
    if not options.get("case_sensitive", True):
        flags.append("-i")
    if options.get("whole_word"):
        flags.append("-w")
    output = subprocess.run(
        [RIPGREP, *flags, "-e", pattern, "--", *files],
        cwd=root,
        capture_output=True,
        check=False,
    ).stdout
    found = set()
    for line in output.splitlines():
        path, number, _ = line.split(b":", 2)
        found.add((path.decode(), int(number)))
    return found


@pytest.mark.skipif(
    RIPGREP is None, reason="ripgrep is not installed (apt-get install ripgrep)"
)
def test_grep_code_finds_the_lines_ripgrep_finds_in_the_django_source(
    project_factory, tmp_path, settings
):
    # Totals past the listed lines are counted apart (search.grep.
    # _lines_counted); given the time, they must come out the same.
    settings.GREP_COUNT_SECONDS = 60
    root = tmp_path / "django"
    shutil.copytree(Path(django.__file__).parent, root)
    project = project_factory()
    summary = repository_index(project=project, repo_path=str(root), embed=False)
    assert summary.files_indexed >= 1000
    alias = project_alias(project=project)
    indexed = sorted(
        CodeFile.objects.using(alias).values_list("relative_path", flat=True)
    )
    classes_seen = set()
    for kind, pattern, options in PATTERNS:
        directory = options.get("directory")
        files = [
            path
            for path in indexed
            if not directory or path.startswith(directory + "/")
        ]
        expected = _ripgrep(root, files, pattern, options)
        result = code_grep(
            project=project,
            pattern=pattern,
            max_matches=MAX_MATCHES,
            max_per_file=MAX_MATCHES,
            **options,
        )
        got = {(f.file_path, m.line) for f in result.files for m in f.matches}
        assert expected, f"{pattern!r} matches nothing: not a useful oracle pattern"
        assert not result.truncated, f"{pattern!r}: {result.notes}"
        assert result.totals_exact
        assert result.matches == len(got)
        assert got == expected, (
            f"{kind} {pattern!r}: {len(got - expected)} lines only grep_code found "
            f"(e.g. {sorted(got - expected)[:3]}), {len(expected - got)} only "
            f"ripgrep found (e.g. {sorted(expected - got)[:3]})"
        )
        counted = code_grep(project=project, pattern=pattern, max_matches=1, **options)
        assert (counted.matches, counted.files_matched) == (
            len(expected),
            len({path for path, _ in expected}),
        ), pattern
        assert counted.totals_exact and counted.matches_shown == 1
        if kind == "unindexable":
            assert not result.indexed, pattern
        if kind in ("literal", "case-insensitive", "whole-word"):
            assert result.indexed, pattern
        classes_seen.add(kind)
    assert len(PATTERNS) == 30 and len(classes_seen) == 8
