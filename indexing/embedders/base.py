"""The contract every embedding backend meets, and helpers they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from indexing.exceptions import EmbeddingFailed


class Embedder(Protocol):
    """Turn text into L2-normalised float32 vectors of one fixed model.

    `model_id` names the vector space: two embedders with the same id produce
    vectors that may be stored and compared together, so anything that changes
    the vectors (model file, token limit, arithmetic) changes the id.
    """

    model_id: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts to index; return float32 [len(texts), dimension]."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query; return float32 [dimension]."""
        ...


def texts_check(texts: Sequence[str]) -> list[str]:
    """Return `texts` as a list, refusing anything that is not a string.

    A bare string is a sequence of characters; embedding each letter would be a
    silent mistake, so it is refused too.
    """
    if isinstance(texts, str):
        raise TypeError("embed_documents() takes a sequence of strings, not a str")
    items = list(texts)
    for position, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"text {position} is {type(text).__name__}, expected str")
    return items


def rows_normalise(matrix: np.ndarray, *, source: str) -> np.ndarray:
    """Return `matrix` with each row scaled to unit length, as float32.

    A row that is not finite or has no length cannot be a valid embedding;
    raise EmbeddingFailed naming `source` rather than store NaNs or zeros.
    """
    # float64 throughout: squares of large float32 values would overflow, and
    # float32 sums of squares lose digits for 1k+ dimensions.
    values = np.asarray(matrix, dtype=np.float64)
    if not np.isfinite(values).all():
        raise EmbeddingFailed(f"{source} returned vectors with NaN or infinity")
    norms = np.sqrt(np.square(values).sum(axis=1, keepdims=True))
    if not np.isfinite(norms).all():
        raise EmbeddingFailed(f"{source} returned vectors too large to normalise")
    if (norms == 0).any():
        raise EmbeddingFailed(f"{source} returned an all-zero vector")
    return (values / norms).astype(np.float32)


def empty_matrix(dimension: int) -> np.ndarray:
    """Return the float32 [0, dimension] result of embedding no texts."""
    return np.zeros((0, dimension), dtype=np.float32)
