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


@dataclass(frozen=True, slots=True)
class Definition:
    """Hold one named definition of a file, for the symbol table.

    Lines are 1-based and inclusive, from the definition's own first line
    (decorators and attached comments excluded) to its last.
    """

    name: str
    qualified: str
    kind: str
    parent: str | None
    start_line: int
    end_line: int
    signature: str
    doc: str


@dataclass(frozen=True, slots=True)
class Reference:
    """Hold one use of a name: where it is and how it is used.

    ``column`` is 1-based, in characters; ``container`` is the qualified name
    of the innermost definition around it, if any.
    """

    name: str
    line: int
    column: int
    kind: str
    container: str | None


@dataclass(slots=True)
class FileAnalysis:
    """Everything one parse of a file yields: its chunks, symbols and uses."""

    chunks: list[Chunk]
    definitions: list[Definition]
    references: list[Reference]
