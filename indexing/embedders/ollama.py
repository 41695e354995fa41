"""Embed text with a model served by Ollama (`POST /api/embed`).

Only the standard library is used (no HTTP client dependency). Requests go
out in batches; connection failures and 5xx answers are retried with
exponential backoff, 4xx answers and timeouts are not (the server answered,
or is too slow, and asking again would only multiply the wait). Every
response is validated before a vector is returned.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from indexing.embedders.base import empty_matrix, rows_normalise, texts_check
from indexing.exceptions import EmbeddingFailed

DEFAULT_BASE_URL = "http://localhost:11434"
DEFAULT_MODEL = "nomic-embed-text"
DEFAULT_TIMEOUT = 30.0
BATCH_SIZE = 32
RETRIES = 3
BACKOFF_SECONDS = 0.5
# Enough of an error body to show the server's message, not a whole page.
_ERROR_BODY_LIMIT = 2000

# nomic-embed-text was trained with task prefixes; without them its document
# and query vectors land in different regions and retrieval degrades.
_NOMIC_PREFIXES = ("search_document: ", "search_query: ")


class _Retryable(Exception):
    """A failure worth another attempt (connection error or 5xx)."""


def _model_family(model: str) -> str:
    """Return the bare model name: no registry namespace, no tag."""
    return model.rsplit("/", 1)[-1].split(":", 1)[0]


class OllamaEmbedder:
    """Embeddings from an Ollama server; the dimension is learned from it."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        timeout: float = DEFAULT_TIMEOUT,
        batch_size: int = BATCH_SIZE,
        retries: int = RETRIES,
        backoff: float = BACKOFF_SECONDS,
    ) -> None:
        if not model:
            raise ValueError("an Ollama model name is required")
        if timeout <= 0 or batch_size < 1 or retries < 0 or backoff < 0:
            raise ValueError("timeout and batch_size must be positive, retries >= 0")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{self.base_url}/api/embed"
        self.model = model
        self.model_id = f"ollama:{model}"
        self.timeout = float(timeout)
        self.batch_size = batch_size
        self.retries = retries
        self.backoff = backoff
        if _model_family(model).startswith("nomic-embed-text"):
            self.document_prefix, self.query_prefix = _NOMIC_PREFIXES
        else:
            self.document_prefix = self.query_prefix = ""
        self._dimension: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OllamaEmbedder(url={self.url!r}, model={self.model!r})"

    @property
    def dimension(self) -> int:
        """Return the model's dimension, asking the server once if unknown."""
        if self._dimension is None:
            self.embed_query("dimension probe")
        assert self._dimension is not None
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; return float32 [len(texts), dimension] in input order."""
        items = texts_check(texts)
        if not items:
            # Without a server round trip the dimension may be unknown; ask
            # only then, so an empty call stays free once it is known.
            return empty_matrix(self.dimension)
        prefixed = [self.document_prefix + text for text in items]
        parts = [
            self._embed(prefixed[start : start + self.batch_size])
            for start in range(0, len(prefixed), self.batch_size)
        ]
        return np.concatenate(parts)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; return float32 [dimension]."""
        (item,) = texts_check([text])
        return self._embed([self.query_prefix + item])[0]

    # -- HTTP ------------------------------------------------------------------------

    def _describe(self) -> str:
        return f"Ollama at {self.url} (model {self.model!r})"

    def _embed(self, batch: list[str]) -> np.ndarray:
        """POST one batch, retrying transient failures; return normalised rows."""
        body = json.dumps({"model": self.model, "input": batch}).encode("utf-8")
        for attempt in range(self.retries + 1):
            try:
                payload = self._post(body)
                break
            except _Retryable as exc:
                if attempt == self.retries:
                    raise EmbeddingFailed(
                        f"{self._describe()} failed after {attempt + 1} attempts: "
                        f"{exc}. Is `ollama serve` running there? Set "
                        "OLLAMA_BASE_URL to its address."
                    ) from exc
                time.sleep(self.backoff * 2**attempt)
        return self._vectors(payload, expected=len(batch))

    def _post(self, body: bytes) -> Any:
        """Send one request; return the decoded JSON or raise."""
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            self._http_error(exc)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                self._timed_out()
            raise _Retryable(str(exc.reason)) from exc
        except TimeoutError:
            self._timed_out()
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EmbeddingFailed(
                f"{self._describe()} answered with invalid JSON: {raw[:200]!r}"
            ) from exc

    def _timed_out(self) -> NoReturn:
        raise EmbeddingFailed(
            f"{self._describe()} did not answer within {self.timeout:g}s. A model "
            "that is still loading can take longer; raise OLLAMA_TIMEOUT."
        )

    def _http_error(self, exc: urllib.error.HTTPError) -> NoReturn:
        """Raise the exception an HTTP error status calls for."""
        try:
            text = exc.read(_ERROR_BODY_LIMIT).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            text = ""
        try:
            message = str(json.loads(text).get("error", text))
        except (ValueError, AttributeError):
            message = text.strip()
        detail = f"HTTP {exc.code}: {message or exc.reason}"
        if exc.code >= 500:
            raise _Retryable(detail) from exc
        if exc.code == 404:
            hint = f"run `ollama pull {self.model}` on the server"
            if "model" not in message.lower():
                hint += (
                    " (or, if the model is there, update Ollama: /api/embed is missing)"
                )
            raise EmbeddingFailed(f"{self._describe()}: {detail}; {hint}.") from exc
        raise EmbeddingFailed(
            f"{self._describe()} refused the request: {detail}"
        ) from exc

    # -- Validation ------------------------------------------------------------------

    def _vectors(self, payload: Any, *, expected: int) -> np.ndarray:
        """Check the response shape and numbers; return normalised float32 rows."""
        where = self._describe()
        embeddings = payload.get("embeddings") if isinstance(payload, dict) else None
        if not isinstance(embeddings, list):
            raise EmbeddingFailed(f"{where} answered without an 'embeddings' list")
        if len(embeddings) != expected:
            raise EmbeddingFailed(
                f"{where} returned {len(embeddings)} embeddings for {expected} texts"
            )
        sizes = set()
        for vector in embeddings:
            if not isinstance(vector, list) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector
            ):
                raise EmbeddingFailed(
                    f"{where} returned an embedding that is not numbers"
                )
            sizes.add(len(vector))
        if len(sizes) != 1 or 0 in sizes:
            raise EmbeddingFailed(
                f"{where} returned embeddings of mixed or zero length {sorted(sizes)}"
            )
        (size,) = sizes
        vectors = rows_normalise(np.array(embeddings, dtype=np.float64), source=where)
        # Learn the dimension only from a response that passed every check.
        with self._lock:
            if self._dimension is None:
                self._dimension = size
        if size != self._dimension:
            raise EmbeddingFailed(
                f"{where} returned {size}-d vectors, earlier {self._dimension}-d; did "
                "the model behind the name change?"
            )
        return vectors
