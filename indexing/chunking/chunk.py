"""The record every chunker returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


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


# How each use of a name is stored: one letter per use (NameUses.kinds).
KIND_LETTERS: Final = {
    "call": "c",
    "attribute": "a",
    "type": "t",
    "import": "i",
    "name": "n",
}
KINDS_BY_LETTER: Final = {letter: kind for kind, letter in KIND_LETTERS.items()}


@dataclass(slots=True)
class NameUses:
    """Hold every use of one name in one file, in file order.

    One record per name and file, not per use: a file uses a name about four
    times on average, and each stored row costs more than its values. The
    lists run in parallel, one entry per use, as do the letters of ``kinds``
    (KIND_LETTERS); ``columns`` and ``containers`` mean what they do in
    Reference.
    """

    name: str
    lines: list[int]
    columns: list[int]
    kinds: str
    containers: list[str | None]

    def references(self) -> list[Reference]:
        """Return the uses one by one."""
        return [
            Reference(self.name, line, column, KINDS_BY_LETTER[letter], container)
            for line, column, letter, container in zip(
                self.lines, self.columns, self.kinds, self.containers, strict=True
            )
        ]


@dataclass(slots=True)
class FileAnalysis:
    """Everything one parse of a file yields: its chunks, symbols and uses."""

    chunks: list[Chunk]
    definitions: list[Definition]
    uses: list[NameUses]

    def references(self) -> list[Reference]:
        """Return every use of every name, in file order."""
        out = [reference for uses in self.uses for reference in uses.references()]
        out.sort(key=lambda r: (r.line, r.column))
        return out
