"""The text an assistant reads: compact, complete, and bounded when asked."""

import textwrap

import anyio
import pytest
from mcp import Client

from indexing.services import repository_index
from mcp_bridge import renderings
from mcp_bridge.schemas import GrepCodeResult, SearchCodeResult
from mcp_bridge.server import server

PROJECT = {
    "id": "p1",
    "name": "shop",
    "database_name": "cb_proj_shop",
    "resolved_by": "explicit",
}


def _hit(**overrides) -> dict:
    hit = {
        "file_path": "billing/invoice.py",
        "repository": "/src/shop",
        "repository_id": "r1",
        "start_line": 10,
        "end_line": 12,
        "language": "python",
        "symbol": "Invoice.total",
        "kind": "method",
        "score": 0.5,
        "content": "def total(self):\n    return sum(self.lines)",
        "context_before": "class Invoice:",
        "context_after": "",
        "stale": False,
    }
    return {**hit, **overrides}


def _search(*hits, **overrides) -> SearchCodeResult:
    return SearchCodeResult(
        results=list(hits),
        total_count=len(hits),
        latency_ms=1.0,
        mode="hybrid",
        embedded_fraction=1.0,
        truncated=False,
        notes=overrides.pop("notes", []),
        project=PROJECT,
        **overrides,
    )


def test_a_search_answer_names_the_repository_once_and_fences_the_code():
    result = _search(_hit(), _hit(file_path="billing/tax.py", symbol=None, stale=True))
    text = renderings.search_render(result)
    assert text.splitlines()[0] == "2 of 2 results (hybrid, 100% embedded) in /src/shop"
    assert text.count("/src/shop") == 1
    assert "1. billing/invoice.py:10-12  Invoice.total  (0.500)" in text
    assert "```python\nclass Invoice:\ndef total(self):" in text
    assert "(from line 9, with context)" in text
    assert "billing/tax.py:10-12  method  (0.500)  [STALE" in text


def test_hits_of_several_repositories_carry_their_repository():
    result = _search(_hit(), _hit(repository="/src/other"))
    text = renderings.search_render(result)
    assert "/src/shop/billing/invoice.py:10-12" in text
    assert "/src/other/billing/invoice.py:10-12" in text


def test_locations_and_signatures_are_one_or_two_lines_a_hit():
    result = _search(_hit(), _hit(start_line=40, end_line=44, symbol="Invoice.tax"))
    locations = renderings.search_render(result, output="locations").splitlines()
    assert locations[1:] == [
        "billing/invoice.py:10  Invoice.total",
        "billing/invoice.py:40  Invoice.tax",
    ]
    signatures = renderings.search_render(result, output="signatures")
    assert "   def total(self):" in signatures and "return sum" not in signatures


def test_code_holding_a_fence_gets_a_longer_fence():
    text = renderings.search_render(_search(_hit(content='s = """```x```"""')))
    assert "````python\n" in text and text.count("````") == 2


def test_grep_lines_merge_context_and_mark_gaps():
    result = GrepCodeResult(
        pattern="tax",
        regex=False,
        case_sensitive=True,
        whole_word=False,
        files=[
            {
                "file_path": "a.py",
                "repository": "/src",
                "repository_id": "r",
                "language": "python",
                "total": 3,
                "stale": False,
                "matches": [
                    {
                        "line": line,
                        "column": 1,
                        "text": f"tax {line}",
                        "context_before": [f"before {line}"],
                        "context_after": [f"after {line}"],
                        "symbol": "f" if line == 3 else None,
                        "symbol_kind": None,
                    }
                    for line in (3, 4, 9)
                ],
            }
        ],
        files_matched=1,
        matches=3,
        matches_shown=3,
        truncated=False,
        totals_exact=True,
        indexed=True,
        candidate_files=1,
        files_scanned=1,
        elapsed_ms=1.0,
        notes=[],
        project=PROJECT,
    )
    lines = renderings.grep_render(result).splitlines()
    assert lines[0] == "3 of 3 lines in 1 files match `tax` (literal) in /src"
    assert lines[1:] == [
        "a.py (3 lines)",
        "  2- before 3",
        "  3: tax 3  « f",
        "  4: tax 4",
        "  5- after 4",
        "  --",
        "  8- before 9",
        "  9: tax 9",
        "  10- after 9",
    ]


def test_answer_fit_cuts_the_list_and_the_structured_result_alike():
    result = _search(*[_hit(start_line=n, end_line=n + 2) for n in range(1, 40, 3)])

    def mark(r, dropped):
        r.truncated = True
        r.notes.append(f"{dropped} more")

    text = renderings.answer_fit(
        result=result,
        render=renderings.search_render,
        items=lambda r: r.results,
        max_tokens=100,
        mark=mark,
    )
    assert 0 < len(result.results) < 13
    assert renderings.tokens_estimate(text) <= 130
    assert result.truncated and result.notes == [f"{13 - len(result.results)} more"]
    assert text.count("billing/invoice.py:") == len(result.results)


# --- through the real server -------------------------------------------------------

SOURCE = '''
class Invoice:
    """An invoice of a shop."""

    def total_with_tax(self, rate):
        """Return the amount due including sales tax."""
        subtotal = sum(line.amount for line in self.lines)
        taxes = subtotal * rate
        rounded = round(subtotal + taxes, 2)
        return rounded


def apply_discount(invoice, percent):
    """Lower every line of an invoice by a percentage."""
    for line in invoice.lines:
        line.amount *= 1 - percent / 100
    return invoice.total_with_tax(0.2)
'''


@pytest.fixture
def shop(project_factory, tmp_path):
    repo = tmp_path / "shop"
    repo.mkdir()
    (repo / "invoice.py").write_text(textwrap.dedent(SOURCE).lstrip())
    (repo / "notes.py").write_text("# every line of an invoice\nLINES = []\n")
    project = project_factory()
    repository_index(project=project, repo_path=str(repo))
    return project


def _call(tool: str, **arguments):
    async def call():
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(call)
    assert not result.is_error, result.content
    return result.content[0].text, result.structured_content


def test_search_code_snippet_lines_cut_the_code_and_say_so(shop):
    text, data = _call(
        "search_code",
        query="amount due including sales tax",
        project_id=shop.name,
        snippet_lines=2,
        limit=1,
    )
    [hit] = data["results"]
    assert hit["symbol"] == "Invoice.total_with_tax"
    assert len(hit["content"].splitlines()) == 2 and hit["lines_cut"] >= 4
    assert f"({hit['lines_cut']} more lines to line {hit['end_line']}" in text
    assert "rounded = round" not in text


def test_locations_are_the_cheapest_answer(shop):
    full, _ = _call("search_code", query="sales tax", project_id=shop.name, limit=2)
    text, data = _call(
        "search_code",
        query="sales tax",
        project_id=shop.name,
        limit=2,
        output="locations",
    )
    assert len(text) < len(full) / 3
    assert all(hit["content"] == "" for hit in data["results"])
    assert "invoice.py:4  Invoice.total_with_tax" in text
    symbols, found = _call(
        "find_symbol", name="apply_discount", project_id=shop.name, output="signatures"
    )
    assert found["symbols"][0]["body"] == ""
    assert "def apply_discount(invoice, percent):" in symbols
    uses, _ = _call(
        "find_references",
        name="total_with_tax",
        project_id=shop.name,
        output="locations",
    )
    assert "invoice.py:16  apply_discount" in uses


def test_every_list_tool_obeys_max_tokens(shop):
    grep_text, grep = _call(
        "grep_code", pattern="line", project_id=shop.name, max_tokens=50
    )
    assert [f["file_path"] for f in grep["files"]] == ["invoice.py"]
    assert grep["truncated"]
    assert "1 more files of matches left out to fit max_tokens" in grep_text
    outline_text, outline = _call(
        "file_outline", path="invoice.py", project_id=shop.name, max_tokens=50
    )
    assert [n["name"] for n in outline["symbols"]] == ["Invoice"]
    assert "1 more top-level definitions left out" in outline_text
    text, data = _call(
        "find_symbol", name="total_with_tax", project_id=shop.name, max_tokens=60
    )
    assert len(data["symbols"]) == 1


def test_an_indexed_file_is_read_through_its_resource(shop, tmp_path):
    async def read(uri):
        async with Client(server) as client:
            try:
                return (await client.read_resource(uri)).contents[0].text
            except Exception as exc:  # the message, out of the task group
                return f"error: {exc}"

    text = anyio.run(read, f"codebase://{shop.name}/shop/invoice.py?lines=4-5")
    assert text.splitlines()[0].startswith("invoice.py:4-5 of 16 lines in ")
    assert "def total_with_tax(self, rate):" in text and "class Invoice" not in text
    (tmp_path / "shop" / "invoice.py").write_text("changed\n")
    assert "[STALE" in anyio.run(read, f"codebase://{shop.name}/shop/invoice.py")
    missing = anyio.run(read, f"codebase://{shop.name}/shop/nope.py")
    assert missing.startswith("error: No indexed file 'nope.py'")
    bad = anyio.run(read, f"codebase://{shop.name}/shop/invoice.py?lines=a-b")
    past = anyio.run(read, f"codebase://{shop.name}/shop/invoice.py?lines=90-99")
    assert past.startswith("error: invoice.py has 16 lines; start_line 90 is past")
    assert bad.startswith("error: ") and "not a line range" in bad
