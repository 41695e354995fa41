"""Train hybrid search's ranking layer (search/ranker.json) on code no benchmark uses.

Run: CODEBASE_MCP_HOME=/tmp/cbtrain .venv/bin/python bench/quality_train.py \
         [--project NAME] [--seed 7]

The training corpus is bench/quality_corpus.py's TRAINING_SOURCES: Python
wheels, npm packages and Debian Go packages that are in no evaluation corpus
(checked; never werkzeug, requests, click, jinja2, lodash or cobra), blanked
the same way. Its questions are the first docstring sentence of each
documented function, plus each function's exact name where that name is
compound and unique (so the layer learns not to bury name lookups).

For each question, hybrid search's fused candidates (the best 40, with their
signals) are fetched once; the linear model of search/ranking.py is fitted
by a listwise softmax loss (numpy, Adam, deterministic), its L2 chosen on a
seeded 20 % of the questions held out, then refitted on all of them. The
convex-combination fusions that bench/quality.py compares get their weight
(alpha) fitted here too, on the same questions. The weights go to
search/ranker.json and its sha256 into search/ranking.py (RANKER_SHA256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
from pathlib import Path

import numpy as np
from machine import django_setup, machine_description

ROOT = Path(__file__).resolve().parent.parent
L2_GRID = (0.0001, 0.001, 0.01, 0.1)
ALPHA_GRID = tuple(round(0.05 * i, 2) for i in range(21))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="quality-train")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the model, write nothing"
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
        labelled_features,
        listwise_fit,
        mrr,
        order_convex,
        order_learned,
        order_rrf,
        ranks_of,
    )

    from indexing.embedders import embedder_get
    from indexing.services import repository_index
    from registry.selectors import project_find
    from registry.services import project_create
    from search.ranking import FEATURES, RANKER_PATH, Ranker

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
    summary = repository_index(project=project, repo_path=str(corpus.root))
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
    embedder = QueryVectorCache(embedder_get())
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

    def fit(fit_on_cases, fit_on_candidates, l2):
        groups = {}
        for leak_free_kind in (False, True):
            chosen = [
                i
                for i, c in enumerate(fit_on_cases)
                if (c.set_name == "leak-free") == leak_free_kind
            ]
            groups[leak_free_kind] = labelled_features(
                cases=[fit_on_cases[i] for i in chosen],
                candidates=[fit_on_candidates[i] for i in chosen],
                is_hit=is_hit,
                rrf_k=rrf_k,
            )
        # Leak-free questions count twice: they stand for questions asked
        # without the answer's words, which docstrings and names are not.
        weights, bias, _, _ = listwise_fit(
            groups=groups[False] + 2 * groups[True], l2=l2, seed=args.seed
        )
        return weights, bias, len(groups[False]) + len(groups[True])

    baseline = held_mrr(order_rrf)
    print(
        f"held-out 20 % ({len(held_cases)}), MRR@10 per kind {'/'.join(kinds)}: "
        f"weighted RRF {' / '.join(f'{v:.3f}' for v in baseline)}"
    )
    best = None
    for l2 in L2_GRID:
        weights, bias, _ = fit(fit_cases, fit_candidates, l2)
        held_ranker = Ranker(weights=tuple(weights), bias=bias)
        values = held_mrr(order_learned(ranker=held_ranker, rrf_k=rrf_k))
        mean = sum(values) / len(values)
        print(
            f"  l2 {l2:g}: learned {' / '.join(f'{v:.3f}' for v in values)} "
            f"(mean {mean:.3f})"
        )
        if best is None or mean > best[1]:
            best = (l2, mean, held_ranker)
    l2 = best[0]
    # How search uses the layer (search/ranking.py rows_rerank, fuse_weight): its
    # order fused by rank with the statement's, weight 1 set a priori.
    fused = held_mrr(order_learned(ranker=best[2], rrf_k=rrf_k, fuse_weight=1.0))
    print(
        f"  l2 {l2:g}: learned + RRF by rank (w 1) "
        f"{' / '.join(f'{v:.3f}' for v in fused)}"
    )
    weights, bias, fitted = fit(cases, candidates, l2)
    print(f"chosen l2 {l2:g}; refitted on all {fitted} questions with a hit")
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"  {name:<18} {weight:+.4f}")

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
        "weights": [round(float(w), 6) for w in weights],
        "bias": round(float(bias), 6),
        "depth": DEPTH,
        "convex": convex,
        "trained": {
            "script": "bench/quality_train.py",
            "seed": args.seed,
            "l2": l2,
            "questions": len(cases),
            "questions_with_a_hit": fitted,
            "sources": corpus.sources,
        },
    }
    data = (json.dumps(payload, indent=1) + "\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    print(f"ranker.json sha256 {digest}")
    if args.dry_run:
        return
    RANKER_PATH.write_bytes(data)
    module = ROOT / "search" / "ranking.py"
    text = module.read_text()
    text = re.sub(
        r'RANKER_SHA256 = "[0-9a-f]{64}"', f'RANKER_SHA256 = "{digest}"', text
    )
    module.write_text(text)
    print(f"wrote {RANKER_PATH} and RANKER_SHA256 in {module}")
    np.set_printoptions(precision=4)


if __name__ == "__main__":
    main()
