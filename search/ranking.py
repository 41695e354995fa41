"""Re-rank hybrid search's fused candidates with small learned boosted trees.

The fused list (weighted RRF of the vector, keyword and definition lists)
decides which chunks are candidates; this layer reorders the best
SEARCH_RERANK_DEPTH of them by signals the index already returns: each
list's rank, cosine similarity, BM25 and coverage, how many of the query's
words name the chunk (symbol, qualified name, path, first line) and the
chunk's kind and length. The trees (300 of depth 3, about 100 KB) are in
ranker.json, trained by bench/quality_train.py on docstring -> code pairs
from packages outside every benchmark corpus; the file's sha256 is checked
before use. On by default (SEARCH_RERANK), its order alone (config/settings.py
says why; SEARCH_RERANK_FUSE_WEIGHT fuses it by rank with the statement's).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from indexing.embedders.minilm import shipped_weights_name
from indexing.terms import identifier_split
from search.exceptions import RankerArtifactInvalid

RANKER_PATH = Path(__file__).with_name("ranker.json")
# sha256 of ranker.json as bench/quality_train.py wrote it; a different file
# is refused (RankerArtifactInvalid) rather than ranking by unknown weights.
RANKER_SHA256 = "4c6a9df5afe430f54accadd79b4033b77c6a8a10c3fe033d532c526c521ae2b6"
# The trees for vectors of the code-tuned MiniLM weights (MINILM_WEIGHTS),
# fitted on that model's own candidates: its cosines and vector ranks are not
# the original's. Vectors of any other model are ranked by ranker.json.
RANKER_CODE_PATH = Path(__file__).with_name("ranker-code.json")
RANKER_CODE_SHA256 = "d824417c7c8dce73a86cfe05c0fc42c1407af4e1bab93cfc8b09a8abb75bfb2d"

# Column positions of the signals search_statement appends to each row.
ROW_SYMBOL = 7
ROW_KIND = 8
ROW_SCORE = 9
ROW_CONTENT = 10
ROW_PATH = 1
ROW_START = 4
ROW_END = 5
ROW_SEMANTIC_RANK = 14
ROW_KEYWORD_RANK = 15
ROW_COVERAGE = 16
ROW_BM25 = 17
ROW_DEFINITION_RANK = 18
ROW_COSINE = 19

FEATURES = (
    "fused",
    "semantic_rr",
    "keyword_rr",
    "definition_rr",
    "cosine",
    "cosine_gap",
    "bm25_share",
    "coverage",
    "name_match",
    "qualified_match",
    "path_match",
    "first_line_match",
    "is_function",
    "is_class",
    "log_lines",
)
_FUNCTION_KINDS = frozenset({"function", "method", "constructor", "arrow_function"})
_CLASS_KINDS = frozenset({"class", "interface", "struct", "type", "enum", "trait"})
_WORD = re.compile(r"[A-Za-z0-9]+")
# Words of a question that say nothing about which code answers it.
_STOP_WORDS = frozenset(
    "a an the of to in on for and or is are be by with as at it its this that "
    "from into if when whether which what how do does not no any all given "
    "return returns value values new get set use used using".split()
)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """Return a crude stem so `parses`, `parsed` and `parse` meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# Paths, symbols and first lines come back query after query.
@lru_cache(maxsize=32768)
def text_stems(text: str) -> frozenset[str]:
    """Return the stems of a text's words and of each compound identifier's parts."""
    stems: set[str] = set()
    for token in _WORD.findall(text):
        stems.add(_stem(token.lower()))
        for part in identifier_split(identifier=token):
            stems.add(_stem(part))
    return frozenset(stems)


def query_stems(query: str) -> set[str]:
    """Return the stems of a query's words that can name code (no stop words)."""
    return {
        stem for stem in text_stems(query) if len(stem) > 1 and stem not in _STOP_WORDS
    }


def _share(wanted: set[str], text: str) -> float:
    return len(wanted & text_stems(text)) / len(wanted) if wanted else 0.0


# A signature fits in this many characters; a minified line would cost
# milliseconds to split.
FIRST_LINE_CHARS = 200


def _first_line(content: str) -> str:
    for line in content[: FIRST_LINE_CHARS * 4].splitlines():
        if line.strip():
            return line[:FIRST_LINE_CHARS]
    return ""


def candidate_features(
    *, query: str, rows: list[tuple], rrf_k: float
) -> list[list[float]]:
    """Return one feature vector (in FEATURES order) per candidate row."""
    wanted = query_stems(query)
    cosines = [row[ROW_COSINE] for row in rows if row[ROW_COSINE] is not None]
    best_cosine = max(cosines, default=0.0)
    best_bm25 = max((row[ROW_BM25] or 0.0 for row in rows), default=0.0) or 1.0
    scale = rrf_k + 1
    vectors = []
    for row in rows:
        symbol = row[ROW_SYMBOL] or ""
        kind = row[ROW_KIND] or ""
        cosine = row[ROW_COSINE] if row[ROW_COSINE] is not None else 0.0
        semantic, keyword, definition = (
            row[ROW_SEMANTIC_RANK],
            row[ROW_KEYWORD_RANK],
            row[ROW_DEFINITION_RANK],
        )
        vectors.append(
            [
                float(row[ROW_SCORE]) * scale,
                scale / (rrf_k + semantic) if semantic else 0.0,
                scale * (row[ROW_COVERAGE] or 0.0) / (rrf_k + keyword)
                if keyword
                else 0.0,
                scale / (rrf_k + definition) if definition else 0.0,
                cosine,
                cosine - best_cosine,
                (row[ROW_BM25] or 0.0) / best_bm25,
                row[ROW_COVERAGE] or 0.0,
                _share(wanted, symbol.rsplit(".", 1)[-1]),
                _share(wanted, symbol),
                _share(wanted, row[ROW_PATH]),
                _share(wanted, _first_line(row[ROW_CONTENT] or "")),
                1.0 if kind in _FUNCTION_KINDS else 0.0,
                1.0 if kind in _CLASS_KINDS else 0.0,
                math.log(max(1, row[ROW_END] - row[ROW_START] + 1)),
            ]
        )
    return vectors


class Ranker:
    """Boosted regression trees over FEATURES, each complete to `depth`.

    Tree t's internal nodes are in heap order (node n's children are 2n + 1
    and 2n + 2): a vector goes right where its `splits[t][n]` feature is
    above `thresholds[t][n]`. After `depth` steps it reaches one of 2**depth
    leaves; the score is `bias` plus the sum of every tree's leaf.
    """

    def __init__(
        self,
        *,
        depth: int,
        splits: np.ndarray,
        thresholds: np.ndarray,
        leaves: np.ndarray,
        bias: float,
    ) -> None:
        self.depth = depth
        self.splits = splits  # (trees, 2**depth - 1) feature indices
        self.thresholds = thresholds  # (trees, 2**depth - 1)
        self.leaves = leaves  # (trees, 2**depth)
        self.bias = bias
        # Flat arrays and each tree's offset in them: np.take on one flat
        # array walks all trees at about half the cost of 2-D fancy indexing.
        trees, internal = splits.shape
        self._splits = splits.ravel()
        self._thresholds = thresholds.ravel()
        self._leaves = leaves.ravel()
        self._node_offset = (np.arange(trees) * internal)[:, None]
        self._leaf_offset = (np.arange(trees) * (internal + 1) - internal)[:, None]

    def scores(self, vectors: list[list[float]]) -> np.ndarray:
        """Return each vector's score, every tree walked at once."""
        count = len(vectors)
        # Feature-major, so feature f of vector v sits at f * count + v.
        values = np.asarray(vectors, dtype=np.float64).T.ravel()
        columns = np.arange(count)[None, :]
        node = np.zeros((len(self._node_offset), count), dtype=np.intp)
        for _ in range(self.depth):
            flat = self._node_offset + node
            feature = self._splits.take(flat)
            right = values.take(feature * count + columns) > self._thresholds.take(flat)
            node = 2 * node + 1 + right
        return self.bias + self._leaves.take(self._leaf_offset + node).sum(axis=0)


def ranker_parse(
    *, data: bytes, expected_sha256: str | None, source: str = RANKER_PATH.name
) -> Ranker:
    """Return the ranker in `data`, read from `source`.

    Raise RankerArtifactInvalid, naming `source`, if it is not ours.
    """
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise RankerArtifactInvalid(
            f"{source} has sha256 {digest}, not the {expected_sha256} "
            "search/ranking.py expects: restore the file from the release, or "
            "retrain it with bench/quality_train.py (which writes its sha256 "
            "there); SEARCH_RERANK=false ranks without it meanwhile."
        )
    try:
        payload = json.loads(data)
        names = tuple(payload["features"])
        trees = payload["trees"]
        depth = int(trees["depth"])
        splits = np.array(trees["splits"], dtype=np.intp)
        thresholds = np.array(trees["thresholds"], dtype=np.float64)
        leaves = np.array(trees["leaves"], dtype=np.float64)
        bias = float(payload["bias"])
    except (ValueError, KeyError, TypeError) as error:
        raise RankerArtifactInvalid(
            f"{source} is not a ranker (features, trees, bias): {error}"
        ) from error
    if names != FEATURES:
        raise RankerArtifactInvalid(
            f"{source} splits on features {list(names)}, this version "
            f"computes {list(FEATURES)}: retrain it with bench/quality_train.py."
        )
    count = len(splits)
    shapes_fit = (
        1 <= depth <= 8
        and count > 0
        and splits.shape == (count, 2**depth - 1)
        and thresholds.shape == splits.shape
        and leaves.shape == (count, 2**depth)
    )
    if not shapes_fit or splits.min() < 0 or splits.max() >= len(FEATURES):
        raise RankerArtifactInvalid(
            f"{source} is not a ranker: its trees are not {count} complete "
            f"trees of depth {depth} over {len(FEATURES)} features; retrain it "
            "with bench/quality_train.py."
        )
    if not (np.isfinite(thresholds).all() and np.isfinite(leaves).all()):
        raise RankerArtifactInvalid(
            f"{source} is not a ranker: a threshold or leaf is not a "
            "finite number; retrain it with bench/quality_train.py."
        )
    return Ranker(
        depth=depth, splits=splits, thresholds=thresholds, leaves=leaves, bias=bias
    )


@dataclass(frozen=True)
class RankerFile:
    """Where the trees for some vectors are, and the sha256 they must have."""

    path: Path
    sha256: str
    constant: str  # the name of this module's constant that holds the sha256


def ranker_file(*, model_id: str | None) -> RankerFile:
    """Return the trees fitted on candidates of vectors of `model_id`."""
    if model_id and shipped_weights_name(model_id=model_id) == "code":
        return RankerFile(RANKER_CODE_PATH, RANKER_CODE_SHA256, "RANKER_CODE_SHA256")
    return RankerFile(RANKER_PATH, RANKER_SHA256, "RANKER_SHA256")


_rankers: dict[Path, Ranker] = {}
_ranker_lock = threading.Lock()


def ranker_get(*, model_id: str | None = None) -> Ranker:
    """Return the shipped ranker for vectors of `model_id`, checked once per process."""
    file = ranker_file(model_id=model_id)
    with _ranker_lock:
        ranker = _rankers.get(file.path)
        if ranker is None:
            ranker = _rankers[file.path] = ranker_parse(
                data=file.path.read_bytes(),
                expected_sha256=file.sha256,
                source=file.path.name,
            )
        return ranker


def rows_rerank(
    *,
    query: str,
    rows: list[tuple],
    ranker: Ranker,
    rrf_k: float,
    depth: int,
    fuse_weight: float | None = None,
) -> list[tuple]:
    """Return the rows reordered by the ranker.

    Only the first `depth` rows (in fused order) are candidates; the rest
    keep their order behind them. Ties keep the fused order. With
    `fuse_weight`, the ranker's order is itself fused by rank with the
    statement's: 1 / (k + learned rank) + fuse_weight / (k + fused rank), so
    the layer moves a candidate only as far as both orders agree (search
    passes it where SEARCH_RERANK_FUSE_WEIGHT > 0; config/settings.py has
    the figures of both).

    The score column keeps the statement's scores, highest first, handed
    down the new order: the k-th row gets the k-th best fused score. A
    federated search merges projects by these scores, and a project whose
    best hit is a strong match (keyword, definition and vector rank 1) must
    keep outranking another's best weak one (bench/quality.py --federated,
    exact names: 0.97 of one project's MRR with them, 0.89 with the layer's
    own scores, equal for every project's first hit).
    """
    head, tail = rows[:depth], rows[depth:]
    if not head:
        return rows
    vectors = candidate_features(query=query, rows=head, rrf_k=rrf_k)
    scored = [
        (float(score), position)
        for position, score in enumerate(ranker.scores(vectors))
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    order = [position for _, position in scored]
    if fuse_weight is not None:
        learned = {position: rank for rank, position in enumerate(order, start=1)}
        order.sort(
            key=lambda position: (
                -(
                    1 / (rrf_k + learned[position])
                    + fuse_weight / (rrf_k + position + 1)
                ),
                position,
            )
        )
    scores = sorted((row[ROW_SCORE] for row in head), reverse=True)
    ordered = []
    for score, position in zip(scores, order, strict=True):
        row = list(head[position])
        row[ROW_SCORE] = score
        ordered.append(tuple(row))
    return ordered + tail
