"""Navigation over real indexed code: find_symbol, find_references, file_outline."""

import shutil
import textwrap
from pathlib import Path

import click
import pytest

from indexing.chunking import file_analyse, language_for_path
from indexing.services import repository_index
from search.exceptions import InvalidSearchQuery, UnknownFile, UnknownLanguage
from search.navigation import file_outline, reference_find, symbol_find

FIXTURES = Path(__file__).parents[1] / "indexing" / "fixtures" / "chunking"

FILES = {
    "app/parsing.py": '''
        """Header parsing."""
        import re

        HEADER_RE = re.compile(r"^(\\w+):")


        class Parser:
            """Parse header blocks."""

            class Options:
                def strict(self):
                    return True

            def parse_header(self, line):
                # parse_header in a comment is no reference
                text = "parse_header in a string is none either"
                return HEADER_RE.match(line), text


        def parse_all(lines):
            parser = Parser()
            return [parser.parse_header(line) for line in lines]
        ''',
    "app/other.py": """
        from app.parsing import parse_all


        def main(argv):
            return parse_all(argv)


        class Form:
            def save(self):
                return 1


        class Model:
            def save(self):
                return 2
        """,
}


def _write(repo: Path, files: dict[str, str]) -> None:
    for relative, source in files.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))


@pytest.fixture
def small(project_factory, tmp_path):
    repo = tmp_path / "repo"
    _write(repo, FILES)
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    return project, repo


def test_find_symbol_ranks_exact_then_qualified_with_signature_doc_and_body(small):
    project, _ = small
    found = symbol_find(project=project, name="parse_header")
    [hit] = found.symbols
    assert (hit.qualified_name, hit.kind, hit.parent) == (
        "Parser.parse_header",
        "method",
        "Parser",
    )
    assert hit.file_path == "app/parsing.py" and hit.start_line == 14
    assert hit.signature.strip() == "def parse_header(self, line):"
    assert hit.body.splitlines()[0].strip() == "def parse_header(self, line):"
    assert hit.match == "name" and not hit.stale
    nested = symbol_find(project=project, name="Parser.Options.strict").symbols
    assert [h.qualified_name for h in nested] == ["Parser.Options.strict"]
    tail = symbol_find(project=project, name="Options.strict").symbols
    assert [h.match for h in tail] == ["qualified"]
    doc = symbol_find(project=project, name="Parser", kind="class").symbols[0]
    assert doc.doc == "Parse header blocks."
    constant = symbol_find(project=project, name="HEADER_RE").symbols[0]
    assert constant.kind == "constant"


def test_prefix_and_fuzzy_widen_and_a_misspelt_name_gets_suggestions(small):
    project, _ = small
    exact = symbol_find(project=project, name="parse")
    assert exact.symbols == [] and exact.suggestions
    prefix = symbol_find(project=project, name="parse", match="prefix")
    assert {h.name for h in prefix.symbols} == {"parse_header", "parse_all"}
    missing = symbol_find(project=project, name="parse_hedaer")
    assert missing.symbols == []
    assert missing.suggestions[0].name == "parse_header"
    assert "did you mean `parse_header` (1)" in missing.notes[0]
    fuzzy = symbol_find(project=project, name="parse_hedaer", match="fuzzy")
    assert fuzzy.symbols[0].name == "parse_header" and fuzzy.symbols[0].match == "fuzzy"


def test_references_are_grouped_by_file_and_skip_strings_and_comments(small):
    project, _ = small
    found = reference_find(project=project, name="parse_header")
    assert [d.qualified_name for d in found.definitions] == ["Parser.parse_header"]
    [group] = found.files
    assert group.file_path == "app/parsing.py" and group.total == 1
    [use] = group.references
    assert (use.line, use.kind, use.container) == (22, "call", "parse_all")
    assert "parser.parse_header(line)" in use.text
    imported = reference_find(project=project, name="parse_all")
    kinds = {(g.file_path, r.kind) for g in imported.files for r in g.references}
    assert kinds == {("app/other.py", "import"), ("app/other.py", "call")}
    calls = reference_find(project=project, name="parse_all", kind="call")
    assert calls.total_references == 1 and calls.files[0].total == 1
    assert [(r.line, r.kind) for r in calls.files[0].references] == [(5, "call")]
    assert reference_find(project=project, name="parse_all", kind="type").files == []


def test_an_ambiguous_name_says_so_and_a_qualified_name_narrows(small):
    project, _ = small
    both = reference_find(project=project, name="save")
    assert {d.qualified_name for d in both.definitions} == {"Form.save", "Model.save"}
    assert "names 2 definitions" in both.notes[0]
    one = reference_find(project=project, name="Model.save")
    assert [d.qualified_name for d in one.definitions] == ["Model.save"]
    assert "1 other definitions share it" in one.notes[-1]


def test_file_outline_is_a_tree_without_bodies(small):
    project, repo = small
    outline = file_outline(project=project, path="app/parsing.py")
    assert [(n.name, n.kind) for n in outline.symbols] == [
        ("HEADER_RE", "constant"),
        ("Parser", "class"),
        ("parse_all", "function"),
    ]
    parser = outline.symbols[1]
    assert [c.name for c in parser.children] == ["Options", "parse_header"]
    assert [c.name for c in parser.children[0].children] == ["strict"]
    assert outline.lines == 22 and not outline.stale
    absolute = file_outline(project=project, path=str(repo / "app" / "parsing.py"))
    assert absolute.total == outline.total


def test_an_edit_renaming_a_function_updates_definitions_and_references(small):
    project, repo = small
    path = repo / "app" / "parsing.py"
    path.write_text(path.read_text().replace("parse_all", "parse_every"))
    other = repo / "app" / "other.py"
    other.write_text(other.read_text().replace("parse_all", "parse_every"))
    repository_index(project=project, repo_path=str(repo), embed=False)
    assert symbol_find(project=project, name="parse_all").symbols == []
    assert reference_find(project=project, name="parse_all").files == []
    assert [
        h.name for h in symbol_find(project=project, name="parse_every").symbols
    ] == ["parse_every"]
    assert reference_find(project=project, name="parse_every").total_references == 2


def test_deleting_a_file_removes_its_symbols_and_references(small):
    project, repo = small
    (repo / "app" / "other.py").unlink()
    repository_index(project=project, repo_path=str(repo), embed=False)
    assert symbol_find(project=project, name="save").symbols == []
    assert reference_find(project=project, name="parse_all").files == []
    with pytest.raises(UnknownFile, match="other.py"):
        file_outline(project=project, path="app/other.py")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"name": ""}, "empty"),
        ({"name": "   "}, "empty"),
        ({"name": "x" * 2000}, "2000 characters"),
        ({"name": "a\x00b"}, "NUL"),
        ({"name": "parse", "kind": "gadget"}, "Unknown kind"),
        ({"name": "parse", "match": "regex"}, "Unknown match"),
        ({"name": "parse", "limit": 0}, "limit"),
    ],
)
def test_find_symbol_refuses_bad_input_clearly(small, call, message):
    project, _ = small
    with pytest.raises(InvalidSearchQuery, match=message):
        symbol_find(project=project, **call)


def test_regex_metacharacters_are_literal_and_other_bad_input_is_refused(small):
    project, _ = small
    assert symbol_find(project=project, name="parse.*").symbols == []
    assert symbol_find(project=project, name="%", match="prefix").symbols == []
    with pytest.raises(UnknownLanguage):
        symbol_find(project=project, name="save", language="klingon")
    with pytest.raises(InvalidSearchQuery, match="Unknown kind"):
        reference_find(project=project, name="save", kind="definition")
    with pytest.raises(InvalidSearchQuery, match="leaves the repository"):
        file_outline(project=project, path="../etc/passwd")
    with pytest.raises(UnknownFile, match="outside every repository"):
        file_outline(project=project, path="/etc/passwd")
    with pytest.raises(
        UnknownFile, match="indexed files with that name: app/parsing.py"
    ):
        file_outline(project=project, path="parsing.py")


def _chunker_symbols(root: Path) -> set[tuple[str, str]]:
    """Return (file, symbol) of every named chunk the chunker makes under root."""
    named = set()
    for path in root.rglob("*"):
        language = language_for_path(str(path)) if path.is_file() else None
        if not language:
            continue
        relative = str(path.relative_to(root))
        analysis = file_analyse(
            text=path.read_text(errors="replace"), language=language
        )
        named |= {(relative, c.symbol) for c in analysis.chunks if c.symbol}
    return named


def test_every_definition_the_chunker_names_is_found_exactly(project_factory, tmp_path):
    # A real PyPI package (click) and one sample each of JS/TS, Go, Rust,
    # Java, C# and the other grammars.
    repo = tmp_path / "corpus"
    shutil.copytree(Path(click.__file__).parent, repo / "click")
    shutil.copytree(FIXTURES, repo / "samples")
    project = project_factory()
    repository_index(project=project, repo_path=str(repo), embed=False)
    missing = []
    for relative, symbol in sorted(_chunker_symbols(repo)):
        hits = symbol_find(project=project, name=symbol, path_glob=relative, limit=50)
        if not any(h.qualified_name == symbol for h in hits.symbols):
            missing.append((relative, symbol))
    assert not missing, missing[:20]


@pytest.mark.parametrize(
    ("fixture", "qualified"),
    [
        ("sample.py", "Parser.parse_header"),
        ("Sample.java", "Inventory.Entry.Entry"),
        ("sample.go", "Store.Get"),
        ("sample.rs", "Shape.area"),
        ("sample.ts", "Circle.area"),
        ("sample.rb", "Billing.Invoice.from_json"),
        ("Sample.cs", "Invoice.AddLine"),
    ],
)
def test_qualified_names_per_language_family(fixture, qualified):
    path = FIXTURES / fixture
    analysis = file_analyse(text=path.read_text(), language=language_for_path(fixture))
    assert qualified in {d.qualified for d in analysis.definitions}
    parent = qualified.rsplit(".", 1)[0]
    [definition] = [d for d in analysis.definitions if d.qualified == qualified]
    assert definition.parent == parent or definition.kind == "method"


def test_a_project_from_before_symbols_gets_them_after_migrating_and_reindexing(
    project_factory, tmp_path
):
    import io

    from django.core.management import call_command

    from indexing.selectors import project_status
    from registry.services import project_alias, project_databases_migrate
    from search.exceptions import ProjectSchemaOutdated

    repo = tmp_path / "repo"
    _write(repo, FILES)
    project = project_factory()
    call_command(
        "migrate",
        "indexing",
        "0003",
        database=project_alias(project=project),
        interactive=False,
        verbosity=0,
        stdout=io.StringIO(),
    )
    assert project_status(project=project).symbols is None
    with pytest.raises(ProjectSchemaOutdated, match="migrate_projects"):
        symbol_find(project=project, name="parse_all")
    [migrated] = project_databases_migrate(projects=[project])
    assert migrated.applied == [
        "indexing.0004_symbols",
        "indexing.0005_file_texts",
        "indexing.0006_text_segments",
        "indexing.0007_repository_git",
        "indexing.0008_navigation_writes",
        "indexing.0009_job_embedding_progress",
        "indexing.0010_halfvec_vectors",
    ]
    # Files stored by an older analysis count as changed on the next run.
    from indexing.models import CodeFile

    repository_index(project=project, repo_path=str(repo), embed=False)
    CodeFile.objects.using(project_alias(project=project)).update(analysis_version=0)
    assert "not searched here" in symbol_find(project=project, name="x").notes[0]
    again = repository_index(project=project, repo_path=str(repo), embed=False)
    assert again.files_indexed == 2 and again.files_unchanged == 0
    assert [h.name for h in symbol_find(project=project, name="parse_all").symbols] == [
        "parse_all"
    ]
    assert (
        repository_index(
            project=project, repo_path=str(repo), embed=False
        ).files_unchanged
        == 2
    )


def test_references_kept_a_row_per_use_are_regrouped_by_the_migration(small):
    import io

    from django.core.management import call_command

    from indexing.selectors import project_status
    from registry.databases import project_connection
    from registry.services import project_alias
    from search.exceptions import ProjectSchemaOutdated

    project, _ = small
    alias = project_alias(project=project)
    names = ("parse_all", "parse_header", "HEADER_RE", "re", "save", "line")
    before = [reference_find(project=project, name=name).as_dict() for name in names]
    uses = project_status(project=project).references

    def migrate(target: str) -> None:
        call_command(
            "migrate",
            "indexing",
            target,
            database=alias,
            interactive=False,
            verbosity=0,
            stdout=io.StringIO(),
        )

    migrate("0007")
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            'SELECT count(*), count(DISTINCT (file_id, line, "column")) '
            "FROM code_references"
        )
        assert cursor.fetchone() == (uses, uses)
    assert project_status(project=project).references == uses
    with pytest.raises(ProjectSchemaOutdated, match="migrate_projects"):
        reference_find(project=project, name="parse_all")
    migrate("0008")
    assert [
        reference_find(project=project, name=name).as_dict() for name in names
    ] == before
    assert project_status(project=project).references == uses
