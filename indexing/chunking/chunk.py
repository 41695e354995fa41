"""The record every chunker returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    """Hold one indexable piece of a file.

    ``start_line`` and ``end_line`` are 1-based and inclusive and always refer
    to the chunk's own code in the original file; a context header line that
    prefixes ``content`` (the enclosing class of a method) is not counted.
    """

    content: str
    start_line: int
    end_line: int
    kind: str
    symbol: str | None
