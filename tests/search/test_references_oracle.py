"""find_references against ripgrep on the Django source, with Python's tokenizer
telling code lines from comments and strings (neither is tree-sitter)."""

import io
import random
import shutil
import subprocess
import tokenize
from collections import defaultdict
from pathlib import Path

import django
import pytest

from indexing.models import CodeReference, CodeSymbol
from indexing.services import repository_index
from registry.services import project_alias
from search.navigation import reference_find

SEED = 20261202
NAMES = 50
RIPGREP = shutil.which("rg")


def _name_lines(path: Path) -> dict[int, set[str]]:
    """Return, per line, the identifiers Python's tokenizer reads as code."""
    names: dict[int, set[str]] = defaultdict(set)
    source = path.read_bytes()
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type == tokenize.NAME:
                names[token.start[0]].add(token.string)
    except (tokenize.TokenError, SyntaxError):
        pass
    return names


def _ripgrep(root: Path, name: str) -> set[tuple[str, int]]:
    output = subprocess.run(
        [RIPGREP, "-w", "-F", "-n", "--no-heading", "-g", "*.py", name, "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = set()
    for line in output.splitlines():
        path, number, _ = line.split(":", 2)
        found.add((path.removeprefix("./"), int(number)))
    return found


@pytest.mark.skipif(
    RIPGREP is None, reason="ripgrep is not installed (apt-get install ripgrep)"
)
def test_references_match_ripgrep_on_code_lines_of_the_django_source(
    project_factory, tmp_path
):
    root = tmp_path / "django"
    shutil.copytree(Path(django.__file__).parent, root)
    project = project_factory()
    summary = repository_index(project=project, repo_path=str(root), embed=False)
    assert summary.files_indexed >= 1000
    alias = project_alias(project=project)
    indexed = set(
        CodeSymbol.objects.using(alias)
        .filter(language="python")
        .values_list("relative_path", flat=True)
    )
    names = sorted(
        set(
            CodeSymbol.objects.using(alias)
            .filter(language="python")
            .values_list("name", flat=True)
        )
    )
    drawn = random.Random(SEED).sample(names, NAMES)
    tokens = {path: _name_lines(root / path) for path in indexed}

    code_lines = found_lines = comment_or_string = matched = 0
    misses = []
    for name in drawn:
        grep = {hit for hit in _ripgrep(root, name) if hit[0] in indexed}
        postings = (
            CodeReference.objects.using(alias)
            .filter(name=name)
            .values_list("file__relative_path", "lines")
        )
        ours = {(path, line) for path, lines in postings for line in lines} | set(
            CodeSymbol.objects.using(alias)
            .filter(name=name)
            .values_list("relative_path", "start_line")
        )
        answer = reference_find(project=project, name=name, limit=1, per_file=1)
        assert answer.total_references == sum(len(lines) for _, lines in postings)
        for path, line in grep:
            matched += 1
            if name not in tokens[path].get(line, ()):
                comment_or_string += 1
                continue
            code_lines += 1
            if (path, line) in ours:
                found_lines += 1
            else:
                misses.append((name, path, line))
    recall = found_lines / code_lines
    print(
        f"\nreferences oracle on django {django.__version__}: {NAMES} names, "
        f"{matched} ripgrep line matches, {code_lines} on code lines; recall "
        f"{recall:.4f}; comments/strings {comment_or_string / matched:.4f}"
    )
    assert recall >= 0.95, misses[:20]
