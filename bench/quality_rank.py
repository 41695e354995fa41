"""Fusion and ranking variants over hybrid search's candidates, for the quality bench.

One SQL statement per query (the one chunk_search runs in hybrid mode, the
fused list cut at DEPTH) gives every candidate with its signals; each
variant only reorders those rows, so all of them are measured on the same
candidates without searching again:

- rrf: today's weighted reciprocal rank fusion (the statement's order);
- convex min-max / convex theoretical-minimum: alpha x normalised cosine +
  (1 - alpha) x normalised BM25 (Bruch et al. 2023, "An Analysis of Fusion
  Functions for Hybrid Retrieval"), alpha fitted on the training split;
- learned: search/ranking.py's boosted trees (the shipped default);
- oracle: the answer first whenever it is among the candidates, the bound
  any reordering of them can reach.

Used by bench/quality.py (evaluation) and bench/quality_train.py (training).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DEPTH = 40
LIMIT = 10


def project_index_configured(*, project, root):
    """Index `root` into `project` with the configured embedder; return the summary.

    A project whose vectors came from another model would otherwise keep
    them (shipped weights, indexing.embedders.embedder_for_space) or refuse
    the run; a benchmark measures the configured model, so it is re-embedded.
    """
    from indexing.embedders import embedder_get
    from indexing.models import EmbeddingSpace
    from indexing.services import repository_index
    from registry.services import project_alias

    embedder = embedder_get()
    space = EmbeddingSpace.objects.using(project_alias(project=project)).first()
    return repository_index(
        project=project,
        repo_path=str(root),
        embedder=embedder,
        reembed=space is not None and space.model_id != embedder.model_id,
    )


@dataclass
class Candidates:
    """A query's fused candidates (rows with signals) and the SQL time."""

    query: str
    rows: list[tuple]
    milliseconds: float


def candidates_fetch(
    *, project, query: str, embedder, depth: int = DEPTH
) -> Candidates:
    """Return the hybrid candidates chunk_search would rank for `query`."""
    from registry.services import project_alias
    from search import selectors
    from search.filters import chunk_filter_sql, query_clean

    started = time.perf_counter()
    alias = project_alias(project=project)
    query = query_clean(query)
    where, filter_params = chunk_filter_sql(
        alias=alias,
        repository=None,
        language=None,
        file_type=None,
        directory=None,
        path_glob=None,
    )
    vector = selectors._vector_literal(embedder.embed_query(query))
    statement = selectors.search_statement(
        mode="hybrid",
        dimension=embedder.dimension,
        where=where,
        filter_params=filter_params,
        keyword_query=selectors._keyword_query(query),
        query_vector=vector,
        candidates=max(LIMIT * 4, 40),
        fetch=max(LIMIT * 3, depth),
        identifiers=selectors.query_identifiers(query),
    )
    rows = selectors._run_query(alias=alias, statement=statement)
    return Candidates(
        query=query, rows=rows, milliseconds=(time.perf_counter() - started) * 1000
    )


Span = tuple[str, int, int]
Order = Callable[[Candidates], list[tuple]]


def spans_of(rows: Sequence[tuple]) -> list[Span]:
    """Return the top LIMIT result spans chunk_search would answer with these rows."""
    from search.results import results_merge_overlapping, results_shape

    results = results_shape(rows=list(rows[: LIMIT * 3]), context_lines=0)
    return [
        (r.file_path, r.start_line, r.end_line)
        for r in results_merge_overlapping(results)[:LIMIT]
    ]


def order_rrf(candidates: Candidates) -> list[tuple]:
    """Return the statement's own (weighted RRF) order."""
    return candidates.rows


def _normalised(values: list[float], *, floor: float | None) -> list[float]:
    """Min-max normalise, or from a theoretical minimum `floor` to the maximum."""
    if not values:
        return values
    low = min(values) if floor is None else floor
    high = max(values)
    if high - low <= 1e-12:
        return [1.0 if high > 0 else 0.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def order_convex(*, alpha: float, theoretical: bool) -> Order:
    """Return a convex combination of normalised cosine and BM25.

    Min-max takes each list's own range; the theoretical-minimum variant
    (TM2C2) maps cosine from -1 and BM25 from 0 to each list's maximum. A
    chunk missing from the keyword list scores BM25 0 (its floor).
    """
    from search.ranking import ROW_BM25, ROW_COSINE

    def order(candidates: Candidates) -> list[tuple]:
        rows = candidates.rows[:DEPTH]
        cosines = [row[ROW_COSINE] or 0.0 for row in rows]
        bm25 = [row[ROW_BM25] or 0.0 for row in rows]
        cos_n = _normalised(cosines, floor=-1.0 if theoretical else None)
        bm_n = _normalised(bm25, floor=0.0 if theoretical else None)
        scored = sorted(
            range(len(rows)),
            key=lambda i: (-(alpha * cos_n[i] + (1 - alpha) * bm_n[i]), i),
        )
        return [rows[i] for i in scored] + candidates.rows[DEPTH:]

    return order


def order_learned(
    *, ranker, rrf_k: float, depth: int = DEPTH, fuse_weight: float | None = None
) -> Order:
    """Return the order of a ranker (search/ranking.py) over the first `depth`.

    With `fuse_weight`, that order fused by rank with the statement's, as
    search does by default: 1 / (k + learned rank) + fuse_weight / (k + fused
    rank); weight 1 is set a priori, not fitted.
    """
    from search.ranking import rows_rerank

    def order(candidates: Candidates) -> list[tuple]:
        return rows_rerank(
            query=candidates.query,
            rows=candidates.rows,
            ranker=ranker,
            rrf_k=rrf_k,
            depth=depth,
            fuse_weight=fuse_weight,
        )

    return order


def ranks_of(
    *, cases, candidates: Sequence[Candidates], order: Order, is_hit
) -> list[int | None]:
    """Return the first-hit rank (1-based, top LIMIT) of each case under `order`."""
    ranks: list[int | None] = []
    for case, found in zip(cases, candidates, strict=True):
        rank = None
        for position, span in enumerate(spans_of(order(found)), start=1):
            if is_hit(case=case, span=span):
                rank = position
                break
        ranks.append(rank)
    return ranks


def oracle_ranks(
    *, cases, candidates: Sequence[Candidates], is_hit, depth: int = DEPTH
) -> list[int | None]:
    """Return 1 where a hit is among the first `depth` candidates, else None."""
    ranks: list[int | None] = []
    for case, found in zip(cases, candidates, strict=True):
        spans = [(row[1], row[4], row[5]) for row in found.rows[:depth]]
        ranks.append(1 if any(is_hit(case=case, span=s) for s in spans) else None)
    return ranks


def labelled_features(
    *, cases, candidates: Sequence[Candidates], is_hit, rrf_k: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return (features, labels) per case whose answer is among the candidates."""
    from search.ranking import candidate_features

    groups = []
    for case, found in zip(cases, candidates, strict=True):
        rows = found.rows[:DEPTH]
        labels = np.array(
            [1.0 if is_hit(case=case, span=(r[1], r[4], r[5])) else 0.0 for r in rows]
        )
        if not labels.any() or labels.all():
            continue
        features = np.array(
            candidate_features(query=found.query, rows=rows, rrf_k=rrf_k)
        )
        groups.append((features, labels))
    return groups


def trees_fit(
    *,
    groups: list[tuple[np.ndarray, np.ndarray]],
    trees: int,
    depth: int,
    seed: int = 7,
):
    """Fit boosted trees by LambdaRank (LightGBM) and return search's Ranker.

    Each group is one query's candidates: features and 0/1 labels (hit or
    not). Every tree has at most 2**depth leaves; learning rate 0.05, at
    least 50 candidates per leaf. Deterministic: one thread, a fixed seed.
    """
    try:
        import lightgbm
    except ImportError as error:
        raise SystemExit(
            "bench/quality_train.py needs LightGBM to fit the ranker: "
            ".venv/bin/pip install 'lightgbm==4.7.0' (pyproject.toml, [bench])"
        ) from error
    data = lightgbm.Dataset(
        np.vstack([features for features, _ in groups]),
        label=np.concatenate([labels for _, labels in groups]),
        group=[len(labels) for _, labels in groups],
    )
    booster = lightgbm.train(
        {
            "objective": "lambdarank",
            "lambdarank_truncation_level": LIMIT,
            "learning_rate": 0.05,
            "num_leaves": 2**depth,
            "max_depth": depth,
            "min_data_in_leaf": 50,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbosity": -1,
        },
        data,
        num_boost_round=trees,
    )
    return trees_complete(dump=booster.dump_model(), depth=depth)


def ranker_fit(
    *,
    cases,
    candidates: Sequence[Candidates],
    is_hit,
    rrf_k: float,
    trees: int,
    depth: int,
    seed: int = 7,
):
    """Fit the ranking layer's trees on questions and their candidates.

    Return (ranker, how many questions had a hit among their candidates).
    Leak-free questions count twice: they stand for questions asked without
    the answer's words, which docstrings and names are not.
    """
    groups = {}
    for leak_free in (False, True):
        chosen = [
            i
            for i, case in enumerate(cases)
            if (case.set_name == "leak-free") == leak_free
        ]
        groups[leak_free] = labelled_features(
            cases=[cases[i] for i in chosen],
            candidates=[candidates[i] for i in chosen],
            is_hit=is_hit,
            rrf_k=rrf_k,
        )
    ranker = trees_fit(
        groups=groups[False] + 2 * groups[True], trees=trees, depth=depth, seed=seed
    )
    return ranker, len(groups[False]) + len(groups[True])


def trees_complete(*, dump: dict, depth: int):
    """Return LightGBM's dumped trees as search's Ranker: complete, in heap order.

    A leaf above the last level becomes a split (feature 0 at 0) whose
    subtrees all end in that leaf's value, so every tree is walked in
    exactly `depth` steps.
    """
    from search.ranking import FEATURES, Ranker

    internal, width = 2**depth - 1, 2**depth
    splits = np.zeros((len(dump["tree_info"]), internal), dtype=np.intp)
    thresholds = np.zeros((len(dump["tree_info"]), internal))
    leaves = np.zeros((len(dump["tree_info"]), width))

    def place(tree: int, node: dict, heap: int, level: int) -> None:
        if "leaf_value" in node:
            if level == depth:
                leaves[tree, heap - internal] = node["leaf_value"]
                return
            node = {
                "split_feature": 0,
                "threshold": 0.0,
                "decision_type": "<=",
                "left_child": node,
                "right_child": node,
            }
        if node["decision_type"] != "<=" or node.get("missing_type") not in (
            None,
            "None",
        ):
            raise ValueError(f"unexpected LightGBM split: {node!r:.200}")
        splits[tree, heap] = node["split_feature"]
        thresholds[tree, heap] = node["threshold"]
        place(tree, node["left_child"], 2 * heap + 1, level + 1)
        place(tree, node["right_child"], 2 * heap + 2, level + 1)

    if dump["feature_names"] and len(dump["feature_names"]) != len(FEATURES):
        raise ValueError("the trees were fitted on other features")
    for tree, info in enumerate(dump["tree_info"]):
        place(tree, info["tree_structure"], 0, 0)
    return Ranker(
        depth=depth, splits=splits, thresholds=thresholds, leaves=leaves, bias=0.0
    )


def mrr(ranks: Sequence[int | None]) -> float:
    """Return MRR@LIMIT of first-hit ranks."""
    return sum(1 / r for r in ranks if r) / len(ranks) if ranks else math.nan


def vectors_load(*, project) -> dict[int, np.ndarray]:
    """Return every embedded chunk's stored vector by chunk id (unit length)."""
    from indexing.models import CodeChunk
    from registry.services import project_alias

    rows = (
        CodeChunk.objects.using(project_alias(project=project))
        .filter(embedding__isnull=False)
        .values_list("id", "embedding")
    )
    vectors = {}
    for chunk_id, stored in rows:
        vector = np.asarray(stored, dtype=np.float32)
        vectors[chunk_id] = vector / np.linalg.norm(vector)
    return vectors


def query_moved(
    *, query: np.ndarray, feedback: Sequence[np.ndarray], beta: float
) -> np.ndarray:
    """Return Rocchio's query: moved toward the mean of its feedback vectors.

    (1 - beta) x query + beta x mean(feedback), back to unit length; with no
    feedback the query is returned as it is.
    """
    if not feedback:
        return query
    moved = (1 - beta) * query + beta * np.mean(np.stack(feedback), axis=0)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


class FixedQueryVector:
    """An embedder stand-in whose query vector is given, for a second probe."""

    def __init__(self, *, vector: np.ndarray, dimension: int) -> None:
        self.vector = vector
        self.dimension = dimension

    def embed_query(self, text: str) -> np.ndarray:
        return self.vector


def feedback_rows(*, candidates: Candidates, order: Order, source: str, k: int):
    """Return the first `k` rows of the feedback source.

    `semantic`: the statement's vector list (its semantic ranks); `ranked`:
    the rows as `order` (the ranking layer) puts them, i.e. the answer shown.
    """
    from search.ranking import ROW_SEMANTIC_RANK

    if source == "semantic":
        ranked = sorted(
            (r for r in candidates.rows if r[ROW_SEMANTIC_RANK] is not None),
            key=lambda r: r[ROW_SEMANTIC_RANK],
        )
        return ranked[:k]
    return order(candidates)[:k]
