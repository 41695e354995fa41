"""The ranking layer over hybrid candidates: its checked weights, its reordering."""

import hashlib
import json
import textwrap

import pytest

from indexing.embedders import embedder_get
from indexing.models import EmbeddingSpace
from indexing.services import repository_index
from registry.services import project_alias
from search import ranking
from search.exceptions import RankerArtifactInvalid
from search.ranking import (
    FEATURES,
    RANKER_CODE_PATH,
    RANKER_CODE_SHA256,
    RANKER_PATH,
    RANKER_SHA256,
    candidate_features,
    query_stems,
    ranker_file,
    ranker_get,
    ranker_parse,
    rows_rerank,
)
from search.selectors import chunk_search


def test_the_shipped_trees_match_their_checksum_and_this_version():
    data = RANKER_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == RANKER_SHA256
    ranker = ranker_get()
    assert ranker.splits.max() < len(FEATURES)
    assert ranker.leaves.shape == (len(ranker.splits), 2**ranker.depth)
    payload = json.loads(data)
    assert payload["trained"]["script"] == "bench/quality_train.py"
    for name in ("werkzeug", "requests", "click", "jinja2", "lodash", "cobra"):
        assert not any(name in source for source in payload["trained"]["sources"])


def test_the_code_weights_have_trees_of_their_own():
    code = embedder_get("minilm", weights="code").model_id
    original = embedder_get("minilm", weights="original").model_id

    assert ranker_file(model_id=code).path == RANKER_CODE_PATH
    for other in (
        original,
        f"{original};max_tokens=256",
        "nomic-embed-text@ollama",
        None,
    ):
        assert ranker_file(model_id=other).path == RANKER_PATH
    data = RANKER_CODE_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == RANKER_CODE_SHA256
    payload = json.loads(data)
    assert payload["trained"]["script"] == "bench/quality_train.py"
    assert payload["trained"]["embedding_model"] == code
    # Fitted on other candidates, so not the original's trees.
    assert ranker_get(model_id=code) is not ranker_get(model_id=original)
    assert payload["trees"] != json.loads(RANKER_PATH.read_bytes())["trees"]


def test_altered_weights_are_refused_with_what_to_do():
    data = RANKER_PATH.read_bytes().replace(b'"bias": ', b'"bias": 1')
    with pytest.raises(RankerArtifactInvalid) as caught:
        ranker_parse(data=data, expected_sha256=RANKER_SHA256)
    message = str(caught.value)
    assert hashlib.sha256(data).hexdigest() in message
    assert "bench/quality_train.py" in message and "SEARCH_RERANK" in message


def test_trees_of_other_features_or_shapes_are_refused():
    payload = json.loads(RANKER_PATH.read_bytes())
    fewer = dict(payload, features=payload["features"][:-1])
    with pytest.raises(RankerArtifactInvalid, match="retrain"):
        ranker_parse(data=json.dumps(fewer).encode(), expected_sha256=None)
    with pytest.raises(RankerArtifactInvalid, match="not a ranker"):
        ranker_parse(data=b"[1, 2]", expected_sha256=None)
    trees = payload["trees"]
    for broken in (
        dict(trees, depth=trees["depth"] + 1),
        dict(trees, leaves=[row[:-1] for row in trees["leaves"]]),
        dict(trees, splits=[[len(FEATURES)] + row[1:] for row in trees["splits"]]),
    ):
        data = json.dumps(dict(payload, trees=broken)).encode()
        with pytest.raises(RankerArtifactInvalid, match="complete trees"):
            ranker_parse(data=data, expected_sha256=None)


def _tiny_trees(*, thresholds: list[list[float]], leaves: list[list[float]]):
    """Two trees of depth 2 over FEATURES: one on cosine, one on name_match."""
    cosine, name = FEATURES.index("cosine"), FEATURES.index("name_match")
    payload = {
        "features": list(FEATURES),
        "bias": 0.5,
        "trees": {
            "depth": 2,
            "splits": [[cosine, cosine, cosine], [name, cosine, name]],
            "thresholds": thresholds,
            "leaves": leaves,
        },
    }
    return ranker_parse(data=json.dumps(payload).encode(), expected_sha256=None)


def test_each_vector_walks_every_tree_to_its_own_leaf():
    ranker = _tiny_trees(
        thresholds=[[0.5, 0.2, 0.8], [0.0, 0.3, 0.5]],
        leaves=[[1, 2, 3, 4], [10, 20, 30, 40]],
    )
    cosine, name = FEATURES.index("cosine"), FEATURES.index("name_match")

    def vector(*, cos: float, match: float) -> list[float]:
        values = [0.0] * len(FEATURES)
        values[cosine], values[name] = cos, match
        return values

    scores = ranker.scores(
        [
            vector(cos=0.1, match=0.0),  # leaves 1 and 10
            vector(cos=0.6, match=0.0),  # 3 and 20
            vector(cos=0.9, match=1.0),  # 4 and 40
            # A value at its threshold goes left: cosine left then right (2),
            # name_match right then left (30).
            vector(cos=0.5, match=0.5),
        ]
    )
    assert scores.tolist() == [11.5, 23.5, 44.5, 32.5]


def _row(
    *,
    symbol,
    kind,
    score,
    semantic,
    keyword,
    cosine,
    content="x = 1\n",
    path="src/a.py",
):
    """A candidate row as search_statement returns it (14 columns + signals)."""
    return (
        f"id-{symbol}",
        path,
        "/repo",
        "repo-id",
        1,
        12,
        "python",
        symbol,
        kind,
        score,
        content,
        "sha",
        10,
        0.0,
        semantic,
        keyword,
        0.5 if keyword else None,
        3.0 if keyword else None,
        None,
        cosine,
    )


def test_a_definition_moves_above_module_code_that_fusion_ranked_first():
    # Fusion puts the module's top-level lines first (a little closer by
    # vectors); the layer learned that an answer is usually a definition.
    rows = [
        _row(
            symbol=None,
            kind="module",
            score=0.30,
            semantic=1,
            keyword=2,
            cosine=0.52,
            content="import time\nCACHE = {}\n",
        ),
        _row(
            symbol="purge_expired_entries",
            kind="function",
            score=0.29,
            semantic=2,
            keyword=1,
            cosine=0.50,
            content="def purge_expired_entries(now):\n    CACHE.clear()\n",
        ),
    ]
    query = "purge the expired entries"
    reranked = rows_rerank(
        query=query, rows=rows, ranker=ranker_get(), rrf_k=5.0, depth=40
    )
    assert [row[7] for row in reranked] == ["purge_expired_entries", None]
    assert reranked[0][9] >= reranked[1][9]
    features = dict(
        zip(
            FEATURES,
            candidate_features(query=query, rows=rows, rrf_k=5.0)[1],
            strict=True,
        )
    )
    assert features["name_match"] == 1.0 and features["is_function"] == 1.0
    assert features["first_line_match"] == 1.0


def test_fused_with_the_statement_the_layer_moves_a_candidate_only_part_way():
    # The layer alone would put the definition at the bottom of fusion's
    # list first; fused by rank with that list it climbs, but not past the
    # candidates both orders put above it.
    rows = [
        _row(
            symbol=None,
            kind="module",
            score=0.3 - index / 100,
            semantic=index + 1,
            keyword=None,
            cosine=0.52 - index / 100,
            content=f"VALUE_{index} = {index}\n",
        )
        for index in range(5)
    ] + [
        _row(
            symbol="purge_expired_entries",
            kind="function",
            score=0.2,
            semantic=6,
            keyword=1,
            cosine=0.45,
            content="def purge_expired_entries(now):\n    CACHE.clear()\n",
        )
    ]
    query = "purge the expired entries"
    ranker = ranker_get()
    alone = rows_rerank(query=query, rows=rows, ranker=ranker, rrf_k=5.0, depth=40)
    fused = rows_rerank(
        query=query, rows=rows, ranker=ranker, rrf_k=5.0, depth=40, fuse_weight=1.0
    )
    assert alone[0][7] == "purge_expired_entries"
    symbols = [row[7] for row in fused]
    place = symbols.index("purge_expired_entries")
    # Learned rank 1, fused rank 6: 1/6 + 1/11 beats every row the learned
    # order puts at rank 2 or lower, save the statement's first.
    assert 0 < place < 5
    # The statement's scores stay, highest first, handed down the new order.
    assert [row[9] for row in fused] == sorted((row[9] for row in rows), reverse=True)


def test_rows_past_the_depth_keep_their_order_below_the_reranked_ones():
    rows = [
        _row(
            symbol=f"mod.f{index}",
            kind="function",
            score=1 / (index + 6),
            semantic=index + 1,
            keyword=None,
            cosine=0.5 - index / 100,
        )
        for index in range(6)
    ]
    reranked = rows_rerank(
        query="anything", rows=rows, ranker=ranker_get(), rrf_k=5.0, depth=3
    )
    assert [row[7] for row in reranked[3:]] == ["mod.f3", "mod.f4", "mod.f5"]
    scores = [row[9] for row in reranked]
    assert scores == sorted(scores, reverse=True)


def test_query_stems_drop_stop_words_and_split_identifiers():
    assert query_stems("return the parsedHeaders of a request") == {
        "parsedheader",
        "pars",
        "header",
        "request",
    }


@pytest.fixture
def small_project(project_factory, tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "cache.py").write_text(
        textwrap.dedent(
            """
            class Cache:
                def purge_expired_entries(self, now):
                    for key in list(self.entries):
                        if self.entries[key].deadline < now:
                            del self.entries[key]


            def format_price(amount, currency):
                return f"{amount:.2f} {currency}"
            """
        ).lstrip("\n")
    )
    project = project_factory()
    repository_index(project=project, repo_path=str(repo))
    return project


def test_hybrid_answers_keep_their_shape_with_and_without_the_layer(
    small_project, settings
):
    query = "drop entries whose deadline has passed"
    settings.SEARCH_RERANK = True
    ranked = chunk_search(project=small_project, query=query)
    settings.SEARCH_RERANK = False
    fused = chunk_search(project=small_project, query=query)
    assert ranked.results[0].symbol == "Cache.purge_expired_entries"
    assert {r.symbol for r in ranked.results} == {r.symbol for r in fused.results}
    assert list(vars(ranked.results[0])) == list(vars(fused.results[0]))
    scores = [r.score for r in ranked.results]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)


def test_a_search_with_altered_weights_fails_clearly(
    small_project, settings, monkeypatch, tmp_path
):
    altered = tmp_path / "ranker.json"
    altered.write_bytes(RANKER_PATH.read_bytes() + b" ")
    monkeypatch.setattr(ranking, "RANKER_PATH", altered)
    monkeypatch.setattr(ranking, "RANKER_CODE_PATH", altered)
    monkeypatch.setattr(ranking, "_rankers", {})
    settings.SEARCH_RERANK = True
    with pytest.raises(RankerArtifactInvalid, match="sha256"):
        chunk_search(project=small_project, query="drop old entries")
    settings.SEARCH_RERANK = False
    assert chunk_search(project=small_project, query="drop old entries").results


def test_a_project_on_the_original_weights_is_searched_with_them(
    project_factory, tmp_path, settings, monkeypatch
):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "cache.py").write_text(
        "def purge_expired_entries(entries, now):\n"
        "    return {k: v for k, v in entries.items() if v.deadline >= now}\n"
    )
    project = project_factory()
    settings.MINILM_WEIGHTS = "original"
    repository_index(project=project, repo_path=str(repo))
    settings.MINILM_WEIGHTS = "code"

    chosen = []
    real_ranker_file = ranking.ranker_file

    def ranker_file_seen(*, model_id):
        file = real_ranker_file(model_id=model_id)
        chosen.append(file.path)
        return file

    monkeypatch.setattr(ranking, "ranker_file", ranker_file_seen)
    settings.SEARCH_RERANK = True

    found = chunk_search(project=project, query="drop entries past their deadline")

    # Embedded with the project's own weights (no fallback to keywords) and
    # ordered by the trees fitted on that model's candidates.
    assert found.results[0].symbol == "purge_expired_entries"
    assert not any("ranked by keywords" in note for note in found.notes)
    assert chosen == [RANKER_PATH]
    assert (
        "This project is embedded with the original MiniLM weights, not the "
        "configured code ones; `manage.py index PATH --reembed` moves it (the "
        "code weights rank better)." in found.notes
    )
    space = EmbeddingSpace.objects.using(project_alias(project=project)).get()
    assert space.model_id == embedder_get(weights="original").model_id
