"""Measure search quality on real code: CodeSearchNet-style and hand-written.

Run: cd /work/main && CODEBASE_MCP_HOME=/tmp/cbbench .venv/bin/python \
         bench/quality.py [--grid] [--prf] [--adapter FILE] [--ranker FILE]
         [--project NAME] [--keep]

Code comes from pinned PyPI wheels and Debian `golang-*-dev` packages (see
bench/quality_corpus.py), fetched with pip / apt-get into the work directory
on first use: Python, JavaScript and Go. The first sentence of each
docstring, JSDoc or Go doc comment (without the name a Go comment opens
with) is a query whose answer is its function; those comments are blanked in
the indexed copy. The copy is indexed through
`repository_index` into a fresh project and queried through `chunk_search`
in every mode, next to a plain BM25 baseline over 40-line windows of the same
files (words as written) and, for reference, the same BM25 with compound
identifiers split into their words. A second, hand-written set asks the way a person does, without any
identifier of the answer (checked before anything runs). A third set asks
for functions by their exact name, the lookup keyword search exists for; it
is reported (and shown in the grid) but not part of the acceptance test.

A hit is a result that overlaps the function's lines and spans at most
4 x its length + 20 lines, so returning whole files cannot score. "Swallowed"
counts queries whose answer was only inside results too long to count.
With --grid, hybrid fusion (RRF k, keyword weight) is searched over a grid on
the same index and the chosen setting is measured on the full sets.

With --federated, the corpus's repositories (each Python package, and the npm
packages together) are also indexed as projects of their own, and every set
is asked of all of them at once through `chunk_search_federated` (per-project
rank fusion, merged by rank): its MRR next to the single project's, per mode,
shows what searching separate projects costs against one project holding
every repository.

Rows named `v: ...` are fusion and ranking variants (bench/quality_rank.py)
measured on the same candidates: today's weighted RRF, convex combinations
of normalised scores, the learned ranking layer (search/ranking.py, trained
by bench/quality_train.py on other packages), and the oracle order of the
candidates, the ceiling of any re-ranking. With --prf, pseudo-relevance
feedback too: a second probe per query with its vector moved toward the
vectors of its first hits (Rocchio), ordered by the trees again.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from machine import django_setup, machine_description, percentile

MODES = ("keyword", "semantic", "hybrid")
LIMIT = 10
WINDOW_LINES = 40
BM25_PLAIN = f"bm25 plain ({WINDOW_LINES}-line windows)"
BM25_SPLIT = "bm25 + split identifiers"
GRID_RRF_K = (5.0, 10.0, 20.0, 60.0)
GRID_KEYWORD_WEIGHT = (0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
SET_TITLES = {
    "docstring": "Docstring set (first docstring sentence -> its function)",
    "hand": "Hand-written set (no identifier of the answer in the question)",
    "identifier": "Identifier set (a function's exact, unique compound name)",
}
ACCEPTANCE_SETS = ("docstring", "hand")
# Pseudo-relevance feedback (Rocchio on the vector side): the source of the
# feedback rows, how many, and how far the query moves toward their mean.
PRF_CONFIGS = (
    ("semantic", 3, 0.3),
    ("semantic", 5, 0.5),
    ("ranked", 1, 0.3),
    ("ranked", 3, 0.3),
    ("ranked", 3, 0.5),
    ("ranked", 5, 0.3),
)


@dataclass(frozen=True)
class Case:
    """One query of one set, with the function that answers it."""

    set_name: str
    language: str
    query: str
    path: str
    name: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class Scores:
    """Ranking quality of one method on some queries."""

    count: int
    mrr: float
    recall_1: float
    recall_10: float


@dataclass(frozen=True)
class Outcome:
    """How one method did on each case of a set."""

    ranks: list[int | None]
    swallowed: list[bool]


Span = tuple[str, int, int]
Search = Callable[[str], list[Span]]


def is_hit(*, case: Case, span: Span) -> bool:
    """Return whether a result's lines answer a case (overlap, not too long)."""
    path, start, end = span
    length = case.end_line - case.start_line + 1
    return (
        path == case.path
        and start <= case.end_line
        and case.start_line <= end
        and end - start + 1 <= 4 * length + 20
    )


def overlaps(*, case: Case, span: Span) -> bool:
    """Return whether a result touches the answer's lines at all."""
    path, start, end = span
    return path == case.path and start <= case.end_line and case.start_line <= end


def hit_rank(*, case: Case, spans: Sequence[Span]) -> int | None:
    """Return the 1-based rank of the first hit among the top LIMIT, or None."""
    for rank, span in enumerate(spans[:LIMIT], start=1):
        if is_hit(case=case, span=span):
            return rank
    return None


def scores_compute(ranks: Sequence[int | None]) -> Scores:
    """Return MRR@10, Recall@1 and Recall@10 of a list of first-hit ranks."""
    if not ranks:
        return Scores(0, float("nan"), float("nan"), float("nan"))
    count = len(ranks)
    return Scores(
        count=count,
        mrr=sum(1 / rank for rank in ranks if rank) / count,
        recall_1=sum(1 for rank in ranks if rank == 1) / count,
        recall_10=sum(1 for rank in ranks if rank) / count,
    )


def outcome_run(*, cases: Sequence[Case], search: Search) -> Outcome:
    """Run every case through one search function."""
    ranks: list[int | None] = []
    swallowed: list[bool] = []
    for case in cases:
        spans = search(case.query)[:LIMIT]
        rank = hit_rank(case=case, spans=spans)
        ranks.append(rank)
        swallowed.append(
            rank is None and any(overlaps(case=case, span=span) for span in spans)
        )
    return Outcome(ranks=ranks, swallowed=swallowed)


class QueryVectorCache:
    """The configured embedder, remembering each query's vector.

    Grid points ask the same queries again; embedding each query once keeps
    a grid affordable, and the first embedding of each is timed.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.vectors: dict[str, np.ndarray] = {}
        self.milliseconds: list[float] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self.vectors.get(text)
        if vector is None:
            started = time.perf_counter()
            vector = self.inner.embed_query(text)
            self.milliseconds.append((time.perf_counter() - started) * 1000)
            self.vectors[text] = vector
        return vector


def question_leaks(*, case: Case, source: str) -> set[str]:
    """Return the words of a hand-written question that name code of its answer."""
    from quality_corpus import (
        go_identifiers,
        identifier_words,
        javascript_identifiers,
        python_identifiers,
        query_words,
    )

    if case.language == "python":
        names = python_identifiers(source)
    elif case.language == "go":
        names = go_identifiers(source)
    else:
        names = javascript_identifiers(source)
    names |= set(case.name.split("."))
    return set(query_words(case.query)) & identifier_words(names)


def identifier_cases(*, corpus, docstring: Sequence[Case]) -> list[Case]:
    """Return a case per docstring target whose own name is compound and unique."""
    from indexing.terms import identifier_split

    names = Counter(name.rsplit(".", 1)[-1] for _, name in corpus.functions)
    cases = []
    for case in docstring:
        name = case.name.rsplit(".", 1)[-1]
        if names[name] == 1 and len(identifier_split(identifier=name)) > 1:
            cases.append(
                Case(
                    "identifier",
                    case.language,
                    name,
                    case.path,
                    case.name,
                    case.start_line,
                    case.end_line,
                )
            )
    return cases


def leak_free_cases(*, corpus, docstring: Sequence[Case]) -> list[Case]:
    """Return docstring cases without the words that name code of their answer.

    A stand-in for hand-written questions (which share no identifier with
    their answer) where none are written: kept when at least 3 words remain
    and at least one was dropped.
    """
    from quality_corpus import query_words

    cases = []
    for case in docstring:
        lines = corpus.files[case.path].splitlines()
        source = "\n".join(lines[case.start_line - 1 : case.end_line])
        words = question_leaks(case=case, source=source)
        tokens = case.query.split()
        kept = [t for t in tokens if not set(query_words(t)) & words]
        if len(kept) >= 3 and len(kept) < len(tokens):
            cases.append(
                Case(
                    "leak-free",
                    case.language,
                    " ".join(kept),
                    case.path,
                    case.name,
                    case.start_line,
                    case.end_line,
                )
            )
    return cases


def cases_build(
    *, corpus, max_per_language: int | None, seed: int
) -> tuple[list[Case], list[Case]]:
    """Return (docstring cases, hand-written cases); exit if a question leaks."""
    from quality_questions import QUESTIONS

    docstring: list[Case] = []
    by_language: dict[str, list] = {}
    for target in corpus.targets:
        by_language.setdefault(target.language, []).append(target)
    for language in sorted(by_language):
        targets = by_language[language]
        if max_per_language and len(targets) > max_per_language:
            targets = random.Random(seed).sample(targets, max_per_language)
        docstring.extend(
            Case(
                "docstring",
                t.language,
                t.query,
                t.path,
                t.name,
                t.start_line,
                t.end_line,
            )
            for t in targets
        )
    hand: list[Case] = []
    problems: list[str] = []
    for question in QUESTIONS:
        lines = corpus.functions.get((question.path, question.name))
        if lines is None:
            problems.append(f"no function {question.name} in {question.path}")
            continue
        case = Case(
            "hand",
            corpus.languages[question.path],
            question.query,
            question.path,
            question.name,
            *lines,
        )
        text = corpus.files[question.path].splitlines()[lines[0] - 1 : lines[1]]
        leaks = question_leaks(case=case, source="\n".join(text))
        if leaks:
            problems.append(
                f"{question.query!r} shares {sorted(leaks)} with {question.name}"
            )
        hand.append(case)
    if problems:
        sys.exit("hand-written questions are invalid:\n  " + "\n  ".join(problems))
    return docstring, hand


def fusion_set(*, rrf_k: float, keyword_weight: float, semantic_weight: float) -> None:
    """Override the fusion settings that chunk_search reads on each call."""
    from django.conf import settings

    settings.SEARCH_RRF_K = rrf_k
    settings.SEARCH_KEYWORD_WEIGHT = keyword_weight
    settings.SEARCH_SEMANTIC_WEIGHT = semantic_weight


def fusion_label(fusion: tuple[float, float, float]) -> str:
    """Name a (k, keyword weight, semantic weight) setting."""
    from django.conf import settings

    rrf_k, keyword_weight, semantic_weight = fusion
    layer = " + re-rank" if settings.SEARCH_RERANK else ""
    return f"hybrid k={rrf_k:g} ws={semantic_weight:g} wk={keyword_weight:g}{layer}"


class Searchers:
    """chunk_search per mode, and the BM25 baselines, with latencies kept."""

    def __init__(
        self, *, project, embedder: QueryVectorCache, baselines: dict[str, object]
    ) -> None:
        self.project = project
        self.embedder = embedder
        self.baselines = baselines
        self.latencies: dict[str, list[float]] = {mode: [] for mode in MODES}

    def mode(self, mode: str) -> Search:
        """Return a search function that runs chunk_search in `mode`."""
        from search.selectors import chunk_search

        def search(query: str) -> list[Span]:
            started = time.perf_counter()
            response = chunk_search(
                project=self.project,
                query=query,
                mode=mode,
                limit=LIMIT,
                context_lines=0,
                embedder=self.embedder,
            )
            self.latencies[mode].append((time.perf_counter() - started) * 1000)
            return [(r.file_path, r.start_line, r.end_line) for r in response.results]

        return search

    def baseline(self, label: str) -> Search:
        """Return a search function over the BM25 windows of one baseline."""
        index = self.baselines[label]

        def search(query: str) -> list[Span]:
            return [
                (window.path, window.start_line, window.end_line)
                for window in index.search(query=query, limit=LIMIT)
            ]

        return search


def table_print(
    *, title: str, cases: Sequence[Case], results: dict[str, Outcome]
) -> None:
    """Print MRR@10 / Recall@1 / Recall@10 per method, overall and per language."""
    print(f"\n{title}")
    print(
        f"  {'method':<34} {'language':<11} {'n':>5}  {'MRR@10':>6}  {'R@1':>6}  "
        f"{'R@10':>6}  swallowed"
    )
    languages = ["all", *sorted({case.language for case in cases})]
    for label, outcome in results.items():
        for language in languages:
            picked = [
                index
                for index, case in enumerate(cases)
                if language == "all" or case.language == language
            ]
            s = scores_compute([outcome.ranks[index] for index in picked])
            swallowed = sum(outcome.swallowed[index] for index in picked)
            print(
                f"  {label:<34} {language:<11} {s.count:>5}  {s.mrr:6.3f}  "
                f"{s.recall_1:6.3f}  {s.recall_10:6.3f}  {swallowed:>9}"
            )


def acceptance_print(*, results: dict[str, dict[str, Outcome]], hybrid: str) -> None:
    """Print, per set, hybrid's MRR against 2x plain BM25 and both single modes."""
    print(
        f"\nAcceptance for {hybrid} "
        "(MRR@10 >= 2 x plain BM25 windows, >= keyword, >= semantic):"
    )
    for name in ACCEPTANCE_SETS:
        outcomes = results[name]
        mrr = {label: scores_compute(o.ranks).mrr for label, o in outcomes.items()}
        bm25 = mrr[BM25_PLAIN]
        value = mrr[hybrid]
        checks = {
            "2 x bm25": (2 * bm25, value >= 2 * bm25),
            "keyword": (mrr["keyword"], value >= mrr["keyword"]),
            "semantic": (mrr["semantic"], value >= mrr["semantic"]),
        }
        parts = ", ".join(
            f"{label} {target:.3f} {'ok' if good else 'MISSED'}"
            for label, (target, good) in checks.items()
        )
        verdict = "PASS" if all(good for _, good in checks.values()) else "FAIL"
        print(
            f"  {name:<9} hybrid {value:.3f}: {parts} -> {verdict} "
            f"(x {value / bm25:.2f} plain BM25, x {value / mrr[BM25_SPLIT]:.2f} "
            "BM25 with split identifiers)"
        )


def grid_search(
    *,
    sets: dict[str, list[Case]],
    searchers: Searchers,
    single: dict[str, float],
) -> tuple[float, float, float]:
    """Return the chosen (k, keyword weight, semantic weight) of the grid.

    Only the ratio of the two weights changes the order, so the semantic
    weight stays 1. Chosen: the highest docstring-set MRR among the settings
    where hybrid is at least as good as both single modes on both sets; if
    none qualifies, the setting whose worse set comes closest to its best
    single mode (the highest minimum of hybrid / best single mode).
    """
    table: dict[tuple[float, float], dict[str, float]] = {}
    started = time.monotonic()
    for rrf_k in GRID_RRF_K:
        for weight in GRID_KEYWORD_WEIGHT:
            fusion_set(rrf_k=rrf_k, keyword_weight=weight, semantic_weight=1.0)
            table[(rrf_k, weight)] = {
                name: scores_compute(
                    outcome_run(cases=cases, search=searchers.mode("hybrid")).ranks
                ).mrr
                for name, cases in sets.items()
            }
    sizes = ", ".join(f"{name} {len(cases)}" for name, cases in sets.items())
    print(
        f"\nFusion grid: hybrid MRR@10 {'/'.join(sets)} ({sizes} queries; semantic "
        f"weight 1; {time.monotonic() - started:.0f} s). * = >= both single modes "
        f"on {' and '.join(ACCEPTANCE_SETS)}"
    )
    print(
        "  best single mode on these queries: "
        + ", ".join(f"{name} {value:.3f}" for name, value in single.items())
    )
    width = 7 * len(sets) + 2
    print(
        "  k \\ wk" + "".join(f"{weight:>{width}g}" for weight in GRID_KEYWORD_WEIGHT)
    )

    def good(cell: dict[str, float]) -> bool:
        return all(cell[name] >= single[name] for name in ACCEPTANCE_SETS)

    for rrf_k in GRID_RRF_K:
        cells = []
        for weight in GRID_KEYWORD_WEIGHT:
            cell = table[(rrf_k, weight)]
            values = "/".join(f"{cell[name]:.3f}" for name in sets)
            cells.append(f"{values}{'*' if good(cell) else ' '}")
        print(f"  {rrf_k:>5g} " + "".join(f"{cell:>{width}}" for cell in cells))
    qualified = [key for key, cell in table.items() if good(cell)]
    if qualified:
        best = max(
            qualified, key=lambda key: (table[key]["docstring"], table[key]["hand"])
        )
    else:
        best = max(
            table,
            key=lambda key: (
                min(table[key][name] / single[name] for name in ACCEPTANCE_SETS),
                table[key]["docstring"],
            ),
        )
    print(
        f"  chosen: SEARCH_RRF_K={best[0]:g} SEARCH_SEMANTIC_WEIGHT=1 "
        f"SEARCH_KEYWORD_WEIGHT={best[1]:g} ("
        + (
            "best docstring MRR among settings with hybrid >= both modes on both sets"
            if qualified
            else "NO setting has hybrid >= both modes on both sets; the one closest "
            "to the best single mode on its worse set"
        )
        + ")"
    )
    return best[0], best[1], 1.0


def variants_add(
    *,
    results: dict[str, dict[str, Outcome]],
    sets: dict[str, list[Case]],
    searchers,
    prf: bool,
) -> None:
    """Add every fusion / ranking variant (bench/quality_rank.py) to the results.

    Each query's hybrid candidates are fetched once; each variant reorders
    them. Latency: the statement's time plus the variant's own reordering,
    in-process, p50 / p95 over every query of every set.
    """
    import json

    from django.conf import settings
    from quality_rank import (
        DEPTH,
        FixedQueryVector,
        candidates_fetch,
        feedback_rows,
        oracle_ranks,
        order_convex,
        order_learned,
        order_rrf,
        query_moved,
        spans_of,
        vectors_load,
    )

    from search.ranking import ranker_file, ranker_get

    rrf_k = float(settings.SEARCH_RRF_K)
    # The trees (and convex weights) fitted on this embedder's candidates.
    model_id = searchers.embedder.model_id
    convex = json.loads(ranker_file(model_id=model_id).path.read_text())["convex"]
    variants = {
        "v: weighted RRF (the statement's order)": order_rrf,
        f"v: convex min-max a={convex['minmax_alpha']:g}": order_convex(
            alpha=convex["minmax_alpha"], theoretical=False
        ),
        f"v: convex TM2C2 a={convex['theoretical_alpha']:g}": order_convex(
            alpha=convex["theoretical_alpha"], theoretical=True
        ),
        "v: learned order alone (main)": order_learned(
            ranker=ranker_get(model_id=model_id), rrf_k=rrf_k
        ),
        "v: learned order alone, top 20": order_learned(
            ranker=ranker_get(model_id=model_id), rrf_k=rrf_k, depth=20
        ),
        "v: learned order alone, top 10": order_learned(
            ranker=ranker_get(model_id=model_id), rrf_k=rrf_k, depth=10
        ),
        "v: learned + RRF by rank, w 1": order_learned(
            ranker=ranker_get(model_id=model_id), rrf_k=rrf_k, fuse_weight=1.0
        ),
    }
    fetch_ms: list[float] = []
    order_ms: dict[str, list[float]] = {label: [] for label in variants}
    vectors = vectors_load(project=searchers.project)
    trees = variants["v: learned order alone (main)"]

    def prf_order(*, first, source: str, k: int, beta: float) -> list[tuple]:
        # One more probe with the query moved toward its feedback rows'
        # vectors (the keyword side unchanged), ordered by the trees again.
        rows = feedback_rows(candidates=first, order=trees, source=source, k=k)
        moved = query_moved(
            query=searchers.embedder.embed_query(first.query),
            feedback=[vectors[row[0]] for row in rows if row[0] in vectors],
            beta=beta,
        )
        second = candidates_fetch(
            project=searchers.project,
            query=first.query,
            embedder=FixedQueryVector(
                vector=moved, dimension=searchers.embedder.dimension
            ),
        )
        return trees(second)

    for name, cases in sets.items():
        found = [
            candidates_fetch(
                project=searchers.project, query=case.query, embedder=searchers.embedder
            )
            for case in cases
        ]
        fetch_ms.extend(candidate.milliseconds for candidate in found)
        for label, order in variants.items():
            ranks = []
            for case, candidate in zip(cases, found, strict=True):
                started = time.perf_counter()
                rows = order(candidate)
                order_ms[label].append((time.perf_counter() - started) * 1000)
                ranks.append(hit_rank(case=case, spans=spans_of(rows)))
            results[name][label] = Outcome(ranks=ranks, swallowed=[False] * len(ranks))
        results[name][f"v: oracle order of top {DEPTH} (= R@{DEPTH})"] = Outcome(
            ranks=oracle_ranks(cases=cases, candidates=found, is_hit=is_hit),
            swallowed=[False] * len(cases),
        )
        for source, k, beta in PRF_CONFIGS if prf else ():
            label = f"v: Rocchio {source} top {k}, b {beta:g} + trees"
            ranks = []
            for case, first in zip(cases, found, strict=True):
                started = time.perf_counter()
                ranks.append(
                    hit_rank(
                        case=case,
                        spans=spans_of(
                            prf_order(first=first, source=source, k=k, beta=beta)
                        ),
                    )
                )
                order_ms.setdefault(label, []).append(
                    (time.perf_counter() - started) * 1000
                )
            results[name][label] = Outcome(ranks=ranks, swallowed=[False] * len(ranks))
    print(
        f"\nvariants over the hybrid statement's top {DEPTH} candidates: statement "
        f"p50 {percentile(fetch_ms, 0.5):.1f} ms, p95 {percentile(fetch_ms, 0.95):.1f}"
        " ms (query embedding not included); reordering per variant:"
    )
    for label, values in order_ms.items():
        total = [a + b for a, b in zip(fetch_ms, values, strict=True)]
        print(
            f"  {label:<38} reorder p95 {percentile(values, 0.95):5.2f} ms; "
            f"statement + reorder p95 {percentile(total, 0.95):6.1f} ms"
        )


def evaluate(
    *,
    searchers: Searchers,
    sets: dict[str, list[Case]],
    defaults: tuple[float, float, float],
    grid_sample: int | None,
    seed: int,
    prf: bool,
) -> None:
    """Run every method on every set, optionally the fusion grid, and print."""
    fusion_set(
        rrf_k=defaults[0], keyword_weight=defaults[1], semantic_weight=defaults[2]
    )
    results: dict[str, dict[str, Outcome]] = {}
    for name, cases in sets.items():
        results[name] = {
            label: outcome_run(cases=cases, search=searchers.baseline(label))
            for label in searchers.baselines
        }
        for mode in MODES:
            label = fusion_label(defaults) if mode == "hybrid" else mode
            results[name][label] = outcome_run(cases=cases, search=searchers.mode(mode))

    timings = searchers.embedder.milliseconds
    print(
        f"query embedding: n={len(timings)} p50 {percentile(timings, 0.5):.1f} ms, "
        f"p95 {percentile(timings, 0.95):.1f} ms (not in the latencies below)"
    )
    for mode in MODES:
        values = searchers.latencies[mode]
        print(
            f"chunk_search {mode:<8}: p50 {percentile(values, 0.5):6.1f} ms, "
            f"p95 {percentile(values, 0.95):6.1f} ms, "
            f"mean {statistics.mean(values):6.1f} ms"
        )

    chosen = defaults
    if grid_sample is not None:
        grid_sets = dict(sets)
        positions = list(range(len(sets["docstring"])))
        if grid_sample and grid_sample < len(positions):
            positions = sorted(random.Random(seed).sample(positions, grid_sample))
        grid_sets["docstring"] = [sets["docstring"][i] for i in positions]
        single = {}
        for name in grid_sets:
            keep = positions if name == "docstring" else range(len(sets[name]))
            single[name] = max(
                scores_compute([results[name][mode].ranks[i] for i in keep]).mrr
                for mode in ("keyword", "semantic")
            )
        chosen = grid_search(sets=grid_sets, searchers=searchers, single=single)
        if chosen != defaults:
            fusion_set(
                rrf_k=chosen[0], keyword_weight=chosen[1], semantic_weight=chosen[2]
            )
            for name, cases in sets.items():
                results[name][fusion_label(chosen) + " (chosen)"] = outcome_run(
                    cases=cases, search=searchers.mode("hybrid")
                )

    variants_add(results=results, sets=sets, searchers=searchers, prf=prf)
    for name, cases in sets.items():
        table_print(title=SET_TITLES[name], cases=cases, results=results[name])
    label = fusion_label(chosen) + (" (chosen)" if chosen != defaults else "")
    acceptance_print(results=results, hybrid=label)
    if chosen != defaults:
        acceptance_print(results=results, hybrid=fusion_label(defaults))


def federated_parts(*, root: Path) -> list[Path]:
    """Return the corpus's repositories: each Python package, and the npm packages."""
    parts = [p for p in sorted((root / "python").iterdir()) if p.is_dir()]
    parts += [
        root / language
        for language in ("javascript", "go")
        if (root / language).is_dir()
    ]
    return parts


def federated_compare(
    *,
    project,
    parts: dict[Path, object],
    root: Path,
    embedder: QueryVectorCache,
    sets: dict[str, list[Case]],
) -> None:
    """Print MRR@10 of one project against the same code split into projects."""
    from search.federation import chunk_search_federated
    from search.selectors import chunk_search

    projects = list(parts.values())
    prefixes = {
        project.name: f"{part.relative_to(root).as_posix()}/"
        for part, project in zip(parts, projects, strict=True)
    }
    latencies: dict[str, list[float]] = {}

    def single(mode: str) -> Search:
        def search(query: str) -> list[Span]:
            response = chunk_search(
                project=project,
                query=query,
                mode=mode,
                limit=LIMIT,
                context_lines=0,
                embedder=embedder,
            )
            return [(r.file_path, r.start_line, r.end_line) for r in response.results]

        return search

    def federated(mode: str) -> Search:
        def search(query: str) -> list[Span]:
            started = time.perf_counter()
            response = chunk_search_federated(
                projects=projects,
                query=query,
                mode=mode,
                limit=LIMIT,
                context_lines=0,
                embedder=embedder,
            )
            latencies.setdefault(mode, []).append(
                (time.perf_counter() - started) * 1000
            )
            failed = [p.name for p in response.projects if p.status != "ok"]
            if failed:
                print(f"  ! projects without an answer: {failed}", file=sys.stderr)
            return [
                (prefixes[r.project] + r.file_path, r.start_line, r.end_line)
                for r in response.results
            ]

        return search

    print(
        f"\nFederated: {len(projects)} projects "
        f"({', '.join(prefixes[p.name].rstrip('/') for p in projects)}) "
        "against one project holding them all (MRR@10 / R@1 / R@10)"
    )
    for name, cases in sets.items():
        for mode in MODES:
            one = scores_compute(outcome_run(cases=cases, search=single(mode)).ranks)
            many = scores_compute(
                outcome_run(cases=cases, search=federated(mode)).ranks
            )
            print(
                f"  {name:<10} {mode:<8} n={one.count:<4} single {one.mrr:.3f} / "
                f"{one.recall_1:.3f} / {one.recall_10:.3f}   federated "
                f"{many.mrr:.3f} / {many.recall_1:.3f} / {many.recall_10:.3f}   "
                f"ratio {many.mrr / one.mrr if one.mrr else float('nan'):.3f}"
            )
    for mode, values in latencies.items():
        print(
            f"  chunk_search_federated {mode:<8}: p50 "
            f"{percentile(values, 0.5):6.1f} ms, p95 {percentile(values, 0.95):6.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        help="where wheels and the blanked corpus go "
        "(default: $CODEBASE_MCP_HOME/bench-quality)",
    )
    parser.add_argument(
        "--project",
        help="index into (and keep) this project, reusing it if it exists; "
        "default: a fresh throw-away project",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the throw-away project afterwards"
    )
    parser.add_argument(
        "--grid", action="store_true", help="search RRF k and the keyword weight"
    )
    parser.add_argument(
        "--grid-sample",
        type=int,
        default=0,
        help="docstring queries (a seeded sample) per grid point; 0 = all "
        "(default; the hand-written set is always whole)",
    )
    parser.add_argument(
        "--max-per-language",
        type=int,
        default=None,
        help="sample at most this many docstring queries per language",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the samples")
    parser.add_argument(
        "--adapter",
        type=Path,
        help="move every query vector by this matrix first (written by "
        "bench/quality_adapter.py)",
    )
    parser.add_argument(
        "--ranker",
        type=Path,
        help="rank by these trees instead of the shipped search/ranker.json "
        "(written by bench/quality_train.py --out)",
    )
    parser.add_argument(
        "--prf",
        action="store_true",
        help="also measure pseudo-relevance feedback (a second probe per query "
        "and configuration: several minutes more)",
    )
    parser.add_argument(
        "--federated",
        action="store_true",
        help="also index each repository as a project of its own and compare a "
        "search over all of them with the single project (skips the baselines)",
    )
    args = parser.parse_args()

    django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from quality_bm25 import Bm25Index
    from quality_corpus import corpus_build
    from quality_rank import project_index_configured

    from indexing.embedders import embedder_get
    from indexing.models import CodeChunk
    from registry.selectors import project_find
    from registry.services import project_alias, project_create, project_delete

    call_command("migrate", verbosity=0)
    workdir = Path(args.workdir or Path(settings.CODEBASE_MCP_HOME) / "bench-quality")
    print(machine_description())

    started = time.monotonic()
    corpus = corpus_build(root=workdir / "corpus", cache=workdir / "wheels")
    docstring, hand = cases_build(
        corpus=corpus, max_per_language=args.max_per_language, seed=args.seed
    )
    lines = sum(len(text.splitlines()) for text in corpus.files.values())
    languages = sorted(set(corpus.languages.values()))
    per_language = ", ".join(
        f"{language} {list(corpus.languages.values()).count(language)}"
        for language in languages
    )
    print(f"corpus: {', '.join(corpus.sources)}")
    print(
        f"  {len(corpus.files)} files ({per_language}), {lines} lines, "
        f"built in {time.monotonic() - started:.1f} s"
    )
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(corpus.dropped.items()))
    print(f"  documented functions left out: {dropped}")

    existing = project_find(reference=args.project) if args.project else None
    project = existing or project_create(
        name=args.project or f"bench-quality-{uuid.uuid4().hex[:8]}"
    )
    if args.ranker:
        from search import ranking

        # The process-wide ranker, loaded once, is this file's for the whole
        # run: chunk_search and every variant rank by it (no sha256 check).
        ranker = ranking.ranker_parse(
            data=args.ranker.read_bytes(), expected_sha256=None
        )
        for model_id in (None, embedder_get().model_id):
            ranking._rankers[ranking.ranker_file(model_id=model_id).path] = ranker
        print(f"ranker: {args.ranker}")
    embedder = embedder_get()
    if args.adapter:
        from quality_adapter import AdaptedQueries, adapter_load

        embedder = AdaptedQueries(inner=embedder, matrix=adapter_load(args.adapter))
        print(f"query adapter: {args.adapter}")
    embedder = QueryVectorCache(embedder)
    try:
        summary = project_index_configured(project=project, root=corpus.root)
        chunks = CodeChunk.objects.using(project_alias(project=project)).count()
        rate = (
            summary.chunks_embedded / summary.embed_seconds
            if summary.embed_seconds
            else 0.0
        )
        print(
            f"index: {chunks} chunks in project {project.name!r}; store "
            f"{summary.store_seconds:.1f} s, embedded {summary.chunks_embedded} "
            f"chunks in {summary.embed_seconds:.1f} s ({rate:.0f} chunks/s)"
        )
        counts = ", ".join(
            f"{language} {sum(1 for case in docstring if case.language == language)}"
            for language in languages
        )
        print(
            f"queries: docstring set {len(docstring)} ({counts}), "
            f"hand-written set {len(hand)}, identifier set "
            f"{len(identifier_cases(corpus=corpus, docstring=docstring))}"
        )
        print(
            f"settings: embedder {embedder.model_id}; limit {LIMIT}; defaults "
            f"SEARCH_RRF_K={settings.SEARCH_RRF_K:g} "
            f"SEARCH_SEMANTIC_WEIGHT={settings.SEARCH_SEMANTIC_WEIGHT:g} "
            f"SEARCH_KEYWORD_WEIGHT={settings.SEARCH_KEYWORD_WEIGHT:g} "
            "SEARCH_KEYWORD_SCAN_LIMIT="
            f"{getattr(settings, 'SEARCH_KEYWORD_SCAN_LIMIT', 'none')} "
            "SEARCH_DEFINITION_WEIGHT="
            f"{getattr(settings, 'SEARCH_DEFINITION_WEIGHT', 'none')} "
            f"SEARCH_HNSW_EF_SEARCH={getattr(settings, 'SEARCH_HNSW_EF_SEARCH', 40)}; "
            f"BM25 k1=1.2 b=0.75 over {WINDOW_LINES}-line windows"
        )
        sets = {
            "docstring": docstring,
            "hand": hand,
            "identifier": identifier_cases(corpus=corpus, docstring=docstring),
        }
        if args.federated:
            parts: dict[Path, object] = {}
            try:
                for part in federated_parts(root=corpus.root):
                    part_name = f"{project.name}-{part.name}"
                    parts[part] = project_find(reference=part_name) or project_create(
                        name=part_name
                    )
                    summary = project_index_configured(project=parts[part], root=part)
                    print(
                        f"index: {part.name}: {summary.chunks_total} chunks, "
                        f"embedded in {summary.embed_seconds:.1f} s"
                    )
                federated_compare(
                    project=project,
                    parts=parts,
                    root=corpus.root,
                    embedder=embedder,
                    sets=sets,
                )
            finally:
                if not args.keep:
                    for part_project in parts.values():
                        project_delete(project=part_project)
            return
        evaluate(
            searchers=Searchers(
                project=project,
                embedder=embedder,
                baselines={
                    BM25_PLAIN: Bm25Index(
                        files=corpus.files, window_lines=WINDOW_LINES
                    ),
                    BM25_SPLIT: Bm25Index(
                        files=corpus.files,
                        window_lines=WINDOW_LINES,
                        split_identifiers=True,
                    ),
                },
            ),
            sets={
                "docstring": docstring,
                "hand": hand,
                "identifier": identifier_cases(corpus=corpus, docstring=docstring),
            },
            defaults=(
                float(settings.SEARCH_RRF_K),
                float(settings.SEARCH_KEYWORD_WEIGHT),
                float(settings.SEARCH_SEMANTIC_WEIGHT),
            ),
            grid_sample=args.grid_sample if args.grid else None,
            seed=args.seed,
            prf=args.prf,
        )
    finally:
        if not args.project and not args.keep:
            project_delete(project=project)


if __name__ == "__main__":
    main()
