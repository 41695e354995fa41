"""Search over a real indexed corpus: modes, filters, stale flags, bad input."""

import textwrap
import time
from pathlib import Path

import pytest

from indexing.services import repository_index
from search.exceptions import InvalidSearchQuery, UnknownLanguage, UnknownRepository
from search.filters import path_glob_regex
from search.selectors import chunk_search

FILES = {
    "src/net/retry.py": """
        import time


        def retry_with_backoff(call, attempts=3):
            delay = 0.1
            for _ in range(attempts):
                try:
                    return call()
                except OSError:
                    time.sleep(delay)
                    delay *= 2
            raise RuntimeError("gave up")
        """,
    "src/net/headers.py": """
        def parseHTTPHeader(line):
            name, _, value = line.partition(":")
            return name.strip().lower(), value.strip()
        """,
    "src/billing/invoice.py": """
        class Invoice:
            def total_with_tax(self, rate):
                subtotal = sum(line.price * line.quantity for line in self.lines)
                return round(subtotal * (1 + rate), 2)
        """,
    "web/cart.ts": """
        export function formatPrice(amount: number, currency: string): string {
          return new Intl.NumberFormat("en", { style: "currency", currency }).format(amount);
        }
        """,
    "docs/guide.md": "# Guide\n\nHow to configure the billing module.\n",
}


@pytest.fixture
def corpus(project_factory, tmp_path):
    repo = tmp_path / "repo"
    for relative, source in FILES.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    project = project_factory()
    repository_index(project=project, repo_path=str(repo))
    return project, repo


def symbols(response) -> list:
    return [hit.symbol for hit in response.results]


def test_a_paraphrase_finds_its_function(corpus):
    project, _ = corpus
    response = chunk_search(
        project=project, query="try the call again after waiting longer each time"
    )
    assert response.results[0].symbol == "retry_with_backoff"
    hit = response.results[0]
    assert (hit.file_path, hit.start_line, hit.end_line) == ("src/net/retry.py", 4, 12)
    assert hit.language == "python" and not hit.stale
    assert response.embedded_fraction == 1.0
    assert "import time" in hit.context_before


@pytest.mark.parametrize("query", ["parseHTTPHeader", "parse http header"])
def test_identifiers_and_their_parts_are_found_by_keyword(corpus, query):
    project, _ = corpus
    response = chunk_search(project=project, query=query, mode="keyword")
    assert response.results[0].symbol == "parseHTTPHeader"


def test_modes_all_answer_and_hybrid_is_the_default(corpus):
    project, _ = corpus
    for mode in ("hybrid", "semantic", "keyword"):
        response = chunk_search(
            project=project, query="sales tax invoice total", mode=mode
        )
        assert response.mode == mode
        assert "Invoice.total_with_tax" in symbols(response)[:2]


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        ({"language": "typescript"}, {"web/cart.ts"}),
        ({"file_type": ".ts"}, {"web/cart.ts"}),
        ({"file_type": "md"}, {"docs/guide.md"}),
        ({"directory": "src/net"}, {"src/net/retry.py", "src/net/headers.py"}),
        ({"path_glob": "src/**/invoice.py"}, {"src/billing/invoice.py"}),
        ({"path_glob": "*.md"}, set()),
        ({"path_glob": "**/*.md"}, {"docs/guide.md"}),
    ],
)
def test_each_filter_narrows_results(corpus, filters, allowed):
    project, _ = corpus
    unfiltered = chunk_search(
        project=project, query="price total amount format", limit=20
    )
    assert len({hit.file_path for hit in unfiltered.results}) > 1
    response = chunk_search(
        project=project, query="price total amount format", limit=20, **filters
    )
    assert {hit.file_path for hit in response.results} <= allowed
    if allowed:
        assert response.results


def test_repository_filter_by_id_and_path(corpus):
    project, repo = corpus
    by_path = chunk_search(project=project, query="retry", repository=str(repo))
    assert by_path.results
    by_id = chunk_search(
        project=project, query="retry", repository=by_path.results[0].repository_id
    )
    assert [h.file_path for h in by_id.results] == [
        h.file_path for h in by_path.results
    ]


def test_stale_flag_flips_when_a_file_changes_or_disappears(corpus):
    project, repo = corpus
    query = "retry with backoff"
    assert not chunk_search(project=project, query=query).results[0].stale
    target = repo / "src/net/retry.py"
    time.sleep(0.01)
    target.write_text(target.read_text() + "\n# changed\n")
    assert chunk_search(project=project, query=query).results[0].stale
    target.unlink()
    assert chunk_search(project=project, query=query).results[0].stale


def test_two_projects_never_see_each_others_chunks(corpus, project_factory, tmp_path):
    project, _ = corpus
    other_repo = tmp_path / "other"
    other_repo.mkdir()
    (other_repo / "zebra.py").write_text("def feed_the_zebra():\n    return 'hay'\n")
    other = project_factory()
    repository_index(project=other, repo_path=str(other_repo))

    mine = chunk_search(project=project, query="feed the zebra", limit=50)
    theirs = chunk_search(project=other, query="retry with backoff", limit=50)
    assert all(hit.file_path != "zebra.py" for hit in mine.results)
    assert {hit.file_path for hit in theirs.results} == {"zebra.py"}


def test_max_tokens_truncates_and_says_so(corpus):
    project, _ = corpus
    full = chunk_search(project=project, query="price total retry header", limit=10)
    cut = chunk_search(
        project=project, query="price total retry header", limit=10, max_tokens=120
    )
    assert len(full.results) > len(cut.results) >= 1
    assert cut.truncated and not full.truncated


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"query": ""}, InvalidSearchQuery, "empty"),
        ({"query": "   \n"}, InvalidSearchQuery, "empty"),
        ({"query": "x" * 5000}, InvalidSearchQuery, "characters"),
        ({"query": "x", "limit": 0}, InvalidSearchQuery, "limit"),
        ({"query": "x", "limit": 51}, InvalidSearchQuery, "limit"),
        ({"query": "x", "mode": "fuzzy"}, InvalidSearchQuery, "mode"),
        ({"query": "x", "language": "klingon"}, UnknownLanguage, "klingon"),
        ({"query": "x", "repository": "/nowhere"}, UnknownRepository, "/nowhere"),
        ({"query": "x", "file_type": "a/b"}, InvalidSearchQuery, "extension"),
        ({"query": "x", "directory": "../etc"}, InvalidSearchQuery, "inside"),
    ],
)
def test_bad_input_gives_clear_errors(corpus, kwargs, error, message):
    project, _ = corpus
    with pytest.raises(error, match=message):
        chunk_search(project=project, **kwargs)


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE code_chunks; --",
        "a & | b",
        '"unterminated',
        "!!! <->",
        "naïve café 名前",
    ],
)
def test_hostile_queries_are_safe(corpus, query):
    project, _ = corpus
    for mode in ("keyword", "hybrid"):
        chunk_search(project=project, query=query, mode=mode)
    assert chunk_search(project=project, query="retry").results


def test_glob_translation():
    import re

    assert re.match(path_glob_regex("src/**/*.py"), "src/a/b/c.py")
    assert re.match(path_glob_regex("src/**/*.py"), "src/c.py")
    assert not re.match(path_glob_regex("src/*.py"), "src/a/c.py")
    assert not re.match(path_glob_regex("*.py"), "a/c.py")
    assert re.match(path_glob_regex("file?.ts"), "file1.ts")


def test_a_method_inside_a_better_ranked_class_takes_its_place():
    from search.results import SearchResult, results_merge_overlapping

    def hit(kind, start, end, score, symbol):
        return SearchResult(
            file_path="a.py",
            repository="/r",
            repository_id="1",
            start_line=start,
            end_line=end,
            language="python",
            symbol=symbol,
            kind=kind,
            score=score,
            content=symbol,
        )

    merged = results_merge_overlapping(
        [
            hit("class", 1, 200, 0.9, "Invoice"),
            hit("function", 300, 310, 0.8, "other"),
            hit("method", 40, 60, 0.7, "Invoice.total"),
        ]
    )
    assert [(m.symbol, m.start_line, m.end_line, m.score) for m in merged] == [
        ("Invoice.total", 40, 60, 0.9),
        ("other", 300, 310, 0.8),
    ]


def test_a_class_ranked_below_its_method_does_not_widen_it():
    from search.results import SearchResult, results_merge_overlapping

    def hit(kind, start, end, score, symbol):
        return SearchResult(
            file_path="a.py",
            repository="/r",
            repository_id="1",
            start_line=start,
            end_line=end,
            language="python",
            symbol=symbol,
            kind=kind,
            score=score,
            content=symbol,
        )

    merged = results_merge_overlapping(
        [hit("method", 162, 172, 0.9, "A.f"), hit("class", 86, 929, 0.8, "A")]
    )
    assert [(m.symbol, m.start_line, m.end_line) for m in merged] == [("A.f", 162, 172)]


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


@pytest.fixture
def widgets(project_factory, tmp_path):
    """Five files that say 'widget' over and over, one that says 'frobnicate' once."""
    files = {
        f"widgets/w{n}.py": (
            f"def widget_{n}(widget):\n"
            "    widget.widget = widget.widget or widget\n"
            "    return widget\n"
        )
        for n in range(5)
    }
    files["tools/frob.py"] = "def tidy(widget):\n    return widget.frobnicate()\n"
    project = project_factory()
    repository_index(
        project=project, repo_path=str(_write(tmp_path / "w", files)), embed=False
    )
    return project


def test_keyword_ranking_weighs_rare_words_above_repeated_common_ones(widgets):
    response = chunk_search(project=widgets, query="widget frobnicate", mode="keyword")
    assert response.results[0].file_path == "tools/frob.py"
    assert len(response.results) == 6


def test_keyword_candidates_come_from_the_rarest_words_first(widgets, settings):
    # With room for one chunk, the rarest word's chunk is the one looked up;
    # a lookup in storage order would have found a widget file first.
    settings.SEARCH_KEYWORD_SCAN_LIMIT = 1
    response = chunk_search(project=widgets, query="widget frobnicate", mode="keyword")
    assert [hit.file_path for hit in response.results] == ["tools/frob.py"]


def test_websearch_syntax_keeps_its_meaning(widgets):
    quoted = chunk_search(project=widgets, query='"widget_3"', mode="keyword")
    assert [hit.file_path for hit in quoted.results] == ["widgets/w3.py"]
    excluded = chunk_search(project=widgets, query="widget -frobnicate", mode="keyword")
    paths = {hit.file_path for hit in excluded.results}
    assert "tools/frob.py" not in paths and len(paths) == 5


def test_a_question_with_or_or_a_quoted_word_is_not_an_all_words_filter(widgets):
    # Before, "or" or a quote turned the whole question into a websearch
    # filter needing every other word, and these found nothing.
    plain = chunk_search(
        project=widgets, query="clean up a widget or frobnicate it", mode="keyword"
    )
    assert plain.results[0].file_path == "tools/frob.py"
    assert len(plain.results) == 6
    quoted = chunk_search(
        project=widgets, query='where is "widget_3" defined please', mode="keyword"
    )
    assert [hit.file_path for hit in quoted.results] == ["widgets/w3.py"]
    # A phrase of stop words filters nothing rather than everything.
    stop = chunk_search(project=widgets, query='"the" frobnicate', mode="keyword")
    assert [hit.file_path for hit in stop.results] == ["tools/frob.py"]


def test_or_joins_phrases_and_a_dash_before_a_digit_is_a_number(widgets):
    from search.selectors import _keyword_query

    either = chunk_search(
        project=widgets, query='"widget_3" or "widget_4"', mode="keyword"
    )
    assert {hit.file_path for hit in either.results} == {
        "widgets/w3.py",
        "widgets/w4.py",
    }
    assert _keyword_query("return -1 when empty").websearch is None
    assert _keyword_query('"a b" or -c d').websearch == '"a b" or -c'


def test_hybrid_weighs_keyword_ranks_by_the_share_of_the_query_covered(
    project_factory, tmp_path, settings
):
    files = {
        f"widgets/w{n}.py": f"def widget_{n}(widget):\n    return widget.widget\n"
        for n in range(5)
    }
    files["tools/frob.py"] = "def tidy(widget):\n    return widget.frobnicate()\n"
    project = project_factory()
    repository_index(project=project, repo_path=str(_write(tmp_path / "w", files)))
    settings.SEARCH_RRF_K, settings.SEARCH_SEMANTIC_WEIGHT = 5.0, 1.0
    settings.SEARCH_KEYWORD_WEIGHT = 1.0
    settings.SEARCH_RERANK = False  # the statement's own fused scores

    def scores(mode: str) -> dict[str, float]:
        response = chunk_search(project=project, query="widget frobnicate", mode=mode)
        return {hit.file_path: hit.score for hit in response.results}

    semantic, hybrid = scores("semantic"), scores("hybrid")
    assert set(semantic) == set(hybrid) == set(files)
    keyword_part = {path: hybrid[path] - semantic[path] for path in files}
    # The one chunk holding every query word is keyword rank 1 with full
    # weight; chunks holding only the word every chunk has add almost nothing.
    assert keyword_part["tools/frob.py"] == pytest.approx(1 / (5 + 1), abs=1e-5)
    assert all(keyword_part[path] < 0.02 for path in files if path != "tools/frob.py")


def test_a_project_of_an_older_schema_says_to_migrate_and_still_answers(corpus):
    from registry.services import project_databases_migrate
    from search.exceptions import ProjectSchemaOutdated
    from tests.reliability.test_migrate_projects import migrate_back

    project, _ = corpus
    migrate_back(project, "0002")
    with pytest.raises(ProjectSchemaOutdated, match="migrate_projects"):
        chunk_search(project=project, query="parseHTTPHeader", mode="keyword")
    hybrid = chunk_search(project=project, query="try the call again after waiting")
    assert hybrid.results[0].symbol == "retry_with_backoff"
    assert any("migrate_projects" in note for note in hybrid.notes)

    assert project_databases_migrate(projects=[project])[0].ok
    found = chunk_search(project=project, query="parseHTTPHeader", mode="keyword")
    assert found.results[0].symbol == "parseHTTPHeader" and not found.notes


def test_a_query_naming_a_definition_brings_its_chunk_and_methods_name_their_class(
    corpus, settings
):
    project, _ = corpus
    settings.SEARCH_DEFINITION_WEIGHT = 1.0
    found = chunk_search(project=project, query="total_with_tax", mode="keyword")
    assert found.results[0].symbol == "Invoice.total_with_tax"
    assert found.results[0].container == "Invoice"
    # A query of identifiers only names each of their definitions.
    both = chunk_search(
        project=project, query="retry_with_backoff parseHTTPHeader", mode="keyword"
    )
    assert {r.symbol for r in both.results[:2]} == {
        "retry_with_backoff",
        "parseHTTPHeader",
    }
    assert both.results[0].container is None


def test_query_identifiers_are_code_words_not_english():
    from search.selectors import query_identifiers

    assert query_identifiers("parse_header") == ["parse_header"]
    assert query_identifiers("Parser.parse_header") == ["Parser.parse_header"]
    assert query_identifiers("parseHeader Parser::read_all") == [
        "parseHeader",
        "Parser::read_all",
    ]
    # In a sentence, a named identifier is usually not what is asked for.
    assert query_identifiers("where is parseHeader defined") == []
    assert query_identifiers("retry a failed request with backoff") == []


def test_a_search_statement_runs_with_its_settings_and_leaves_none_behind(corpus):
    from django.db import OperationalError

    from registry.databases import project_connection
    from registry.services import project_alias
    from search.selectors import SearchStatement, _run_query

    alias = project_alias(project=corpus[0])
    probe = SearchStatement(
        sql="SELECT current_setting('hnsw.ef_search'), "
        "current_setting('hnsw.iterative_scan'), current_setting('statement_timeout'), "
        "%(word)s",
        params={"word": "it's 100% here"},
        ef_search=77,
    )
    assert _run_query(alias=alias, statement=probe, timeout_ms=1234) == [
        ("77", "relaxed_order", "1234ms", "it's 100% here")
    ]
    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
    # The timeout is the statement's own: a slower one is cancelled.
    slow = SearchStatement(sql="SELECT pg_sleep(2)", params={}, ef_search=None)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"):
        _run_query(alias=alias, statement=slow, timeout_ms=50)
    assert time.monotonic() - started < 1.5


def _vector_statement(mode: str, candidates: int):
    from search.selectors import _keyword_query, search_statement

    return search_statement(
        mode=mode,
        dimension=384,
        where="TRUE",
        filter_params={},
        keyword_query=_keyword_query("parse header"),
        query_vector="[0]",
        candidates=candidates,
        fetch=30,
    )


def test_the_hnsw_breadth_is_a_setting_never_below_the_candidates(settings):
    assert _vector_statement("hybrid", 40).ef_search == 40
    assert _vector_statement("semantic", 60).ef_search == 60
    settings.SEARCH_HNSW_EF_SEARCH = 1000
    assert _vector_statement("hybrid", 40).ef_search == 1000
    assert _vector_statement("semantic", 60).ef_search == 1000
    assert _vector_statement("keyword", 40).ef_search is None
