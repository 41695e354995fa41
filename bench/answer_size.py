"""Measure what an assistant reads: characters and tokens of each tool's text, before and after.

Run: CODEBASE_MCP_HOME=/tmp/bench-answers .venv/bin/python bench/answer_size.py
     [--docstring N] [--project NAME]

The corpus and queries are bench/quality.py's: its hand-written questions and
a seeded sample of its docstring questions, asked through search_code at
limit 10 over the real MCP server (in process, `mcp.Client`). "Before" is
the text the SDK made of the same structured result until the tools rendered
their own (`pydantic_core.to_json(result, indent=2)`, what MCPServer does
with a returned model); "after" is the tools' text now. Also measured the
same way: find_symbol, find_references, grep_code and file_outline on names
and files drawn from the index. Tokens are counted twice: estimated as
characters / 4, and by a real tokenizer of the model family that reads the
answers, the Claude tokenizer shipped in the `anthropic` 0.28.0 wheel
(`anthropic/tokenizer.json`, the one Claude tokenizer ever published; fetched
with pip into the bench cache). Code and JSON escapes tokenize differently,
so the two ratios differ.

Each answer is checked for what an assistant needs of every hit: its path and
lines, its symbol, every line of its code, and the stale mark when stale.
"""

from __future__ import annotations

import argparse
import random
import statistics
import uuid
from pathlib import Path

from machine import django_setup, machine_description

SEED = 5
TOKENIZER_WHEEL = ("anthropic", "0.28.0", "anthropic/tokenizer.json")


def tokenizer_load(cache: Path):
    """Return a function counting the tokens of a text with the published Claude tokenizer."""
    import zipfile

    from quality_corpus import WheelSource, wheel_fetch
    from tokenizers import Tokenizer

    distribution, version, member = TOKENIZER_WHEEL
    wheel = wheel_fetch(
        source=WheelSource(distribution, version, "", lambda _: None), cache=cache
    )
    with zipfile.ZipFile(wheel) as archive:
        tokenizer = Tokenizer.from_str(archive.read(member).decode())
    return lambda text: len(tokenizer.encode(text).ids)


def before_text(structured: dict) -> str:
    """Return the text MCPServer made of a returned model before (indented JSON)."""
    import pydantic_core

    return pydantic_core.to_json(_without_new_fields(structured), indent=2).decode()


def _without_new_fields(value):
    # Fields the compact answers added; the text before them had none.
    if isinstance(value, dict):
        return {k: _without_new_fields(v) for k, v in value.items() if k != "lines_cut"}
    if isinstance(value, list):
        return [_without_new_fields(v) for v in value]
    return value


def missing_in(text: str, structured: dict) -> list[str]:
    """Return what of each search hit the text does not show."""
    lost = []
    for hit in structured["results"]:
        where = f"{hit['file_path']}:{hit['start_line']}-{hit['end_line']}"
        if where not in text:
            lost.append(f"location {where}")
        if hit["symbol"] and hit["symbol"] not in text:
            lost.append(f"symbol {hit['symbol']}")
        for line in hit["content"].splitlines():
            if line not in text:
                lost.append(f"code line of {where}")
                break
        if hit["stale"] and "STALE" not in text:
            lost.append(f"stale mark of {where}")
    return lost


# What search_code showed around each hit before it rendered its own text.
BEFORE_CONTEXT_LINES = 3


async def measure(calls: list[tuple[str, dict]], count) -> list[tuple]:
    """Return (tool, characters before, after, tokens before, after, what was lost) per call.

    For search_code "before" is the same query with the context it had
    then (3 lines); "after" is the tool's defaults now (no context), and
    "search_code +ctx" the new text with the old context, to show both.
    """
    from mcp import Client

    from mcp_bridge.server import server

    out = []
    async with Client(server) as client:

        async def call(tool, arguments):
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, (tool, arguments, result.content)
            return result.content[0].text, result.structured_content

        def row(tool, before, after, lost):
            return (tool, len(before), len(after), count(before), count(after), lost)

        for tool, arguments in calls:
            text, structured = await call(tool, arguments)
            before = before_text(structured)
            lost = missing_in(text, structured) if tool == "search_code" else []
            if tool == "search_code":
                old = {**arguments, "context_lines": BEFORE_CONTEXT_LINES}
                with_context, old_structured = await call(tool, old)
                before = before_text(old_structured)
                assert [h["file_path"] for h in old_structured["results"]] == [
                    h["file_path"] for h in structured["results"]
                ], "context changed the hits"
                out.append(row("search_code +ctx", before, with_context, []))
            out.append(row(tool, before, text, lost))
            if tool == "search_code":
                code = "".join(hit["content"] for hit in structured["results"])
                out.append(row("(code of hits)", before, code, []))
    return out


def report(rows: list[tuple]) -> None:
    tools = sorted({row[0] for row in rows})
    print(
        f"  {'tool':<16} {'answers':>7} {'chars before':>13} {'after':>6} "
        f"{'after/before':>12} | {'Claude tokens before':>20} {'after':>6} "
        f"{'after/before':>12} | {'chars/4 after':>13}"
    )
    for tool in tools:
        mine = [row for row in rows if row[0] == tool]
        chars_before, chars_after, tokens_before, tokens_after = (
            statistics.mean(row[i] for row in mine) for i in (1, 2, 3, 4)
        )
        print(
            f"  {tool:<16} {len(mine):>7} {chars_before:>13.0f} {chars_after:>6.0f} "
            f"{chars_after / chars_before:>12.0%} | {tokens_before:>20.0f} "
            f"{tokens_after:>6.0f} {tokens_after / tokens_before:>12.0%} | "
            f"{chars_after / 4:>13.0f}"
        )
    lost = [item for row in rows for item in row[5]]
    print(
        f"  search_code answers missing something an assistant needs: "
        f"{sum(1 for row in rows if row[5])} ({lost[:3]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docstring", type=int, default=60, help="docstring queries")
    parser.add_argument("--project", help="reuse (and keep) this indexed project")
    args = parser.parse_args()
    django_setup()
    import anyio
    from django.conf import settings
    from django.core.management import call_command
    from quality import cases_build
    from quality_corpus import corpus_build

    from indexing.models import CodeFile, CodeSymbol
    from indexing.services import repository_index
    from registry.selectors import project_find
    from registry.services import project_alias, project_create, project_delete

    call_command("migrate", verbosity=0)
    print(machine_description())
    workdir = Path(settings.CODEBASE_MCP_HOME) / "bench-quality"
    corpus = corpus_build(root=workdir / "corpus", cache=workdir / "wheels")
    docstring, hand = cases_build(corpus=corpus, max_per_language=None, seed=SEED)
    # The questions measured before quality.py gained Go (issue 17): the
    # same 47 hand-written ones and the same seeded docstring sample.
    docstring = [case for case in docstring if case.language != "go"]
    hand = [case for case in hand if case.language != "go"]
    rng = random.Random(SEED)
    asked = hand + rng.sample(docstring, min(args.docstring, len(docstring)))
    existing = project_find(reference=args.project) if args.project else None
    project = existing or project_create(
        name=args.project or f"bench-answers-{uuid.uuid4().hex[:6]}"
    )
    try:
        if existing is None:
            repository_index(project=project, repo_path=str(corpus.root))
        alias = project_alias(project=project)
        print(
            f"corpus: {', '.join(corpus.sources)}; {len(hand)} hand-written and "
            f"{len(asked) - len(hand)} docstring questions, limit 10"
        )
        names = sorted(
            set(
                CodeSymbol.objects.using(alias)
                .filter(kind__in=["function", "method", "class"])
                .values_list("name", flat=True)
            )
        )
        drawn = rng.sample(names, 20)
        files = rng.sample(
            sorted(
                CodeFile.objects.using(alias).values_list("relative_path", flat=True)
            ),
            20,
        )
        pid = {"project_id": project.name}
        calls = [("search_code", {"query": c.query, "limit": 10, **pid}) for c in asked]
        calls += [("find_symbol", {"name": name, **pid}) for name in drawn]
        calls += [("find_references", {"name": name, **pid}) for name in drawn]
        calls += [("grep_code", {"pattern": name, **pid}) for name in drawn]
        calls += [("file_outline", {"path": path, **pid}) for path in files]
        count = tokenizer_load(workdir / "wheels")
        rows = anyio.run(measure, calls, count)
        report(rows)
        example = next(row for row in rows if row[0] == "search_code")
        print(
            f"  e.g. the first hand-written question: {example[1]} -> {example[2]} "
            "characters"
        )
    finally:
        if existing is None:
            project_delete(project=project)


if __name__ == "__main__":
    main()
