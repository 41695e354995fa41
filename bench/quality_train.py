"""Train hybrid search's ranking layer (search/ranker*.json) on code no benchmark uses.

Run: CODEBASE_MCP_HOME=/tmp/cbtrain .venv/bin/python bench/quality_train.py \
         [--project NAME] [--seed 7]

The training corpus is bench/quality_corpus.py's TRAINING_SOURCES: Python
wheels, npm packages and Debian Go packages that are in no evaluation corpus
(checked; never werkzeug, requests, click, jinja2, lodash or cobra), blanked
the same way. Its questions are the first docstring sentence of each
documented function, plus each function's exact name where that name is
compound and unique (so the layer learns not to bury name lookups).

For each question, hybrid search's fused candidates (the best 40, with their
signals) are fetched once; search/ranking.py's boosted trees are fitted by
LambdaRank (LightGBM, one thread, seeded: deterministic), their number and
depth chosen on a seeded 20 % of the questions held out, then refitted on
all of them. The convex-combination fusions that bench/quality.py compares
get their weight (alpha) fitted here too, on the same questions. The trees
go to the file for the configured embedder's vectors (search/ranking.py,
ranker_file: ranker-code.json for MINILM_WEIGHTS=code, else ranker.json)
and their sha256 into that module (RANKER_CODE_SHA256 / RANKER_SHA256).
LightGBM is needed here only (pyproject.toml, [bench]): search walks the
shipped trees with numpy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
from pathlib import Path

from machine import django_setup, machine_description

ROOT = Path(__file__).resolve().parent.parent
# (trees, depth) tried; each tree has at most 2**depth leaves.
SHAPE_GRID = ((100, 4), (200, 4), (200, 3), (300, 3))
ALPHA_GRID = tuple(round(0.05 * i, 2) for i in range(21))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="quality-train")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the model, write nothing"
    )
    parser.add_argument(
        "--adapter",
        type=Path,
        help="move every query vector by this matrix first (bench/quality_adapter.py)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write the trees here instead of search/ (an experiment: "
        "bench/quality.py --ranker FILE measures them)",
    )
    args = parser.parse_args()

    django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from quality import (
        Case,
        QueryVectorCache,
        identifier_cases,
        is_hit,
        leak_free_cases,
    )
    from quality_corpus import (
        TRAINING_SOURCES,
        corpus_build,
        training_sources_check,
    )
    from quality_rank import (
        DEPTH,
        candidates_fetch,
        mrr,
        order_convex,
        order_learned,
        order_rrf,
        project_index_configured,
        ranker_fit,
        ranks_of,
    )

    from indexing.embedders import embedder_get
    from indexing.embedders.minilm import shipped_weights_name
    from registry.selectors import project_find
    from registry.services import project_create
    from search.ranking import FEATURES, ranker_file

    training_sources_check()
    call_command("migrate", verbosity=0)
    print(machine_description())
    workdir = Path(settings.CODEBASE_MCP_HOME) / "bench-quality"
    corpus = corpus_build(
        root=workdir / "train-corpus",
        cache=workdir / "wheels",
        sources=TRAINING_SOURCES,
    )
    print(f"training corpus: {', '.join(corpus.sources)}")
    project = project_find(reference=args.project) or project_create(name=args.project)
    summary = project_index_configured(project=project, root=corpus.root)
    print(
        f"  {len(corpus.files)} files, {summary.chunks_total} chunks "
        f"({summary.chunks_embedded} embedded now)"
    )
    docstring = [
        Case("docstring", t.language, t.query, t.path, t.name, t.start_line, t.end_line)
        for t in corpus.targets
    ]
    names = identifier_cases(corpus=corpus, docstring=docstring)
    leak_free = leak_free_cases(corpus=corpus, docstring=docstring)
    cases = docstring + names + leak_free
    languages = sorted({case.language for case in cases})
    print(
        f"  questions: {len(docstring)} docstring + {len(names)} names + "
        f"{len(leak_free)} docstring without the answer's identifiers; "
        + ", ".join(
            f"{language} {sum(c.language == language for c in cases)}"
            for language in languages
        )
    )
    embedder = embedder_get()
    if args.adapter:
        from quality_adapter import AdaptedQueries, adapter_load

        embedder = AdaptedQueries(inner=embedder, matrix=adapter_load(args.adapter))
        print(f"  query adapter: {args.adapter}")
    embedder = QueryVectorCache(embedder)
    started = time.monotonic()
    candidates = [
        candidates_fetch(project=project, query=case.query, embedder=embedder)
        for case in cases
    ]
    print(f"  candidates fetched in {time.monotonic() - started:.0f} s")
    rrf_k = float(settings.SEARCH_RRF_K)

    order = list(range(len(cases)))
    random.Random(args.seed).shuffle(order)
    held = set(order[: len(order) // 5])
    fit_idx = [i for i in range(len(cases)) if i not in held]
    held_idx = sorted(held)

    def pick(indices):
        return [cases[i] for i in indices], [candidates[i] for i in indices]

    fit_cases, fit_candidates = pick(fit_idx)
    held_cases, held_candidates = pick(held_idx)
    kinds = ("docstring", "identifier", "leak-free")

    def held_mrr(order) -> list[float]:
        """MRR@10 of the held-out questions, per kind of question."""
        values = []
        for kind in kinds:
            chosen = [i for i, c in enumerate(held_cases) if c.set_name == kind]
            values.append(
                mrr(
                    ranks_of(
                        cases=[held_cases[i] for i in chosen],
                        candidates=[held_candidates[i] for i in chosen],
                        order=order,
                        is_hit=is_hit,
                    )
                )
            )
        return values

    def fit(fit_on_cases, fit_on_candidates, shape):
        return ranker_fit(
            cases=fit_on_cases,
            candidates=fit_on_candidates,
            is_hit=is_hit,
            rrf_k=rrf_k,
            trees=shape[0],
            depth=shape[1],
            seed=args.seed,
        )

    baseline = held_mrr(order_rrf)
    print(
        f"held-out 20 % ({len(held_cases)}), MRR@10 per kind {'/'.join(kinds)}: "
        f"weighted RRF {' / '.join(f'{v:.3f}' for v in baseline)}"
    )
    best = None
    for shape in SHAPE_GRID:
        held_ranker, _ = fit(fit_cases, fit_candidates, shape)
        values = held_mrr(order_learned(ranker=held_ranker, rrf_k=rrf_k))
        mean = sum(values) / len(values)
        print(
            f"  {shape[0]} trees of depth {shape[1]}: learned "
            f"{' / '.join(f'{v:.3f}' for v in values)} (mean {mean:.3f})"
        )
        if best is None or mean > best[1]:
            best = (shape, mean, held_ranker)
    shape = best[0]
    fused = held_mrr(order_learned(ranker=best[2], rrf_k=rrf_k, fuse_weight=1.0))
    print(
        f"  {shape[0]} trees of depth {shape[1]}: learned + RRF by rank (w 1) "
        f"{' / '.join(f'{v:.3f}' for v in fused)}"
    )
    ranker, fitted = fit(cases, candidates, shape)
    print(
        f"chosen {shape[0]} trees of depth {shape[1]}; refitted on all {fitted} "
        "questions with a hit"
    )

    convex = {}
    for label, theoretical in (("minmax", False), ("theoretical", True)):
        scored = [
            (
                mrr(
                    ranks_of(
                        cases=cases,
                        candidates=candidates,
                        order=order_convex(alpha=alpha, theoretical=theoretical),
                        is_hit=is_hit,
                    )
                ),
                alpha,
            )
            for alpha in ALPHA_GRID
        ]
        value, alpha = max(scored)
        convex[f"{label}_alpha"] = alpha
        print(f"convex {label}: alpha {alpha:g} (training MRR@10 {value:.3f})")

    payload = {
        "features": list(FEATURES),
        "bias": ranker.bias,
        "depth": DEPTH,
        "convex": convex,
        "trained": {
            "script": "bench/quality_train.py",
            "seed": args.seed,
            "trees": shape[0],
            "tree_depth": shape[1],
            "questions": len(cases),
            "questions_with_a_hit": fitted,
            "sources": corpus.sources,
            "embedding_model": embedder_get().model_id,
        },
    }
    # One tree per line: the file reads and diffs, and thresholds keep every
    # digit (a rounded one could send a vector down the other branch).
    trees = {
        "depth": ranker.depth,
        "splits": ranker.splits.tolist(),
        "thresholds": ranker.thresholds.tolist(),
        "leaves": ranker.leaves.tolist(),
    }
    head = json.dumps(payload, indent=1)[:-2]
    body = ",\n".join(
        f' "{key}": '
        + (
            json.dumps(value)
            if key == "depth"
            else "[\n  " + ",\n  ".join(json.dumps(row) for row in value) + "\n ]"
        )
        for key, value in trees.items()
    )
    data = (f'{head},\n "trees": {{\n{body}\n }}\n}}\n').encode()
    digest = hashlib.sha256(data).hexdigest()
    print(f"trees sha256 {digest}")
    if args.dry_run:
        return
    if args.out:
        args.out.write_bytes(data)
        print(f"wrote {args.out}")
        return
    # The trees for the configured embedder's vectors (MINILM_WEIGHTS); search
    # ranks every other model's vectors by ranker.json, so only shipped
    # weights may write one.
    model_id = embedder_get().model_id
    if shipped_weights_name(model_id=model_id) is None:
        raise SystemExit(
            f"the configured embedder is {model_id}, not shipped MiniLM weights: "
            "search would not use these trees; measure them with --out FILE and "
            "bench/quality.py --ranker FILE"
        )
    file = ranker_file(model_id=model_id)
    file.path.write_bytes(data)
    module = ROOT / "search" / "ranking.py"
    text = module.read_text()
    text = re.sub(
        rf'\n{file.constant} = "[0-9a-f]{{64}}"',
        f'\n{file.constant} = "{digest}"',
        text,
    )
    module.write_text(text)
    print(f"wrote {file.path} and {file.constant} in {module}")


if __name__ == "__main__":
    main()
