"""Text embedding backends: local MiniLM (default) or an Ollama server.

Use `embedder_get()` for the configured embedder, `embedder_for_space()` for
the one that makes a project's vectors (indexing.selectors.space_embedder_get);
both read the settings when called, so importing this package needs neither
Django settings nor the model files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from typing import Any

from indexing.embedders.base import Embedder
from indexing.embedders.minilm import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_WEIGHTS,
    SHIPPED_WEIGHTS,
    MiniLMEmbedder,
)
from indexing.embedders.ollama import DEFAULT_BASE_URL, DEFAULT_MODEL, OllamaEmbedder
from indexing.exceptions import EmbeddingFailed

__all__ = [
    "Embedder",
    "MiniLMEmbedder",
    "OllamaEmbedder",
    "embedder_cache_clear",
    "embedder_for_space",
    "embedder_get",
]

BACKENDS = ("minilm", "ollama")

_cache: dict[tuple[str, tuple[Hashable, ...]], Embedder] = {}
_cache_lock = threading.Lock()


def _setting(name: str, default: Any) -> Any:
    """Return Django setting `name`, or the environment variable of that name.

    The environment is the fallback only when Django is not configured (a
    script, a bare test run); a configured project's settings always win.
    """
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return os.environ.get(name, default)
    try:
        return getattr(settings, name, default)
    except ImproperlyConfigured:
        return os.environ.get(name, default)


def _number(name: str, default: Any, kind: type[int] | type[float]) -> Any:
    value = _setting(name, default)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise EmbeddingFailed(f"{name} must be a number, not {value!r}") from None


def embedder_get(backend: str | None = None, *, weights: str | None = None) -> Embedder:
    """Return the process-wide embedder for `backend` (default: the setting).

    Settings: EMBEDDING_BACKEND ("minilm" or "ollama"), EMBEDDING_THREADS,
    MINILM_MAX_TOKENS, MINILM_ACTIVATIONS, MINILM_WEIGHTS (`weights`
    overrides it), OLLAMA_BASE_URL,
    OLLAMA_EMBEDDING_MODEL, OLLAMA_TIMEOUT. One instance exists per backend
    and parameters; instances are thread-safe and load their model lazily.
    """
    name = str(backend or _setting("EMBEDDING_BACKEND", "minilm") or "minilm")
    name = name.strip().lower()
    params: tuple[Hashable, ...]
    if name == "minilm":
        params = (
            _number("MINILM_MAX_TOKENS", DEFAULT_MAX_TOKENS, int),
            _number("EMBEDDING_THREADS", os.cpu_count() or 1, int),
            str(_setting("MINILM_ACTIVATIONS", "int8") or "int8"),
            _weights(weights),
        )
    elif name == "ollama":
        params = (
            str(_setting("OLLAMA_BASE_URL", "") or DEFAULT_BASE_URL),
            str(_setting("OLLAMA_EMBEDDING_MODEL", "") or DEFAULT_MODEL),
            _number("OLLAMA_TIMEOUT", 30.0, float),
        )
    else:
        raise EmbeddingFailed(
            f"EMBEDDING_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}"
        )
    key = (name, params)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = _create(name, params)
            _cache[key] = embedder
    return embedder


def _create(name: str, params: tuple[Hashable, ...]) -> Embedder:
    if name == "minilm":
        max_tokens, threads, activations, weights = params
        try:
            return MiniLMEmbedder(
                max_tokens=max_tokens,
                threads=threads,
                activations=activations,
                patch=SHIPPED_WEIGHTS[weights],
            )
        except ValueError as exc:
            raise EmbeddingFailed(f"MiniLM settings: {exc}") from exc
    base_url, model, timeout = params
    try:
        return OllamaEmbedder(base_url=base_url, model=model, timeout=timeout)
    except ValueError as exc:
        raise EmbeddingFailed(f"Ollama settings: {exc}") from exc


def _weights(weights: str | None) -> str:
    name = str(weights or _setting("MINILM_WEIGHTS", "") or DEFAULT_WEIGHTS)
    name = name.strip().lower()
    if name not in SHIPPED_WEIGHTS:
        raise EmbeddingFailed(
            f"MINILM_WEIGHTS must be one of {', '.join(SHIPPED_WEIGHTS)}, not {name!r}"
        )
    return name


def embedder_for_space(*, model_id: str | None) -> Embedder:
    """Return the embedder that makes vectors of `model_id`, else the configured one.

    With MiniLM configured, a project keeps the shipped weights it was
    embedded with (the wheel's own, say, after the default moved to the
    code-tuned ones): its searches and refreshes embed with those until
    `index --reembed` moves it to the configured weights. A model no
    shipped weights make (another backend, other settings) gets the
    configured embedder, whose caller reports the mismatch as before.
    """
    configured = embedder_get()
    if model_id is None or configured.model_id == model_id:
        return configured
    if isinstance(configured, MiniLMEmbedder):
        for name in SHIPPED_WEIGHTS:
            candidate = embedder_get("minilm", weights=name)
            if candidate.model_id == model_id:
                return candidate
    return configured


def embedder_cache_clear() -> None:
    """Forget the cached embedders (tests, or after changing settings)."""
    with _cache_lock:
        _cache.clear()
