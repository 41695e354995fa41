"""The record every chunker returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
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

# COPY's text format: a backslash escapes, a tab ends a value, a line end a row.
_COPY_ESCAPES: Final = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
)


def _copy_text(value: str) -> str:
    return value if value.isidentifier() else value.translate(_COPY_ESCAPES)


@lru_cache(maxsize=4096)
def _array_item(value: str | None) -> str:
    """Return an element of a text array literal (quoted, or NULL), COPY-escaped."""
    if value is None:
        return "NULL"
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quoted.translate(_COPY_ESCAPES)


def reference_row(
    name: str,
    lines: Iterable[int],
    columns: Iterable[int],
    kinds: str,
    containers: Iterable[str | None],
) -> str:
    """Spell the uses of one name in one file as a code_references row.

    In COPY's text format, without the file id the writer puts first and
    without the line end. Spelt as the file is analysed: built as lists and
    adapted by psycopg on the writer thread, the same facts cost 3 us per
    use, and kept as objects until written, four per name, they made the
    cyclic garbage collector walk every batch in flight (0.4 s on Django).
    """
    return (
        f"{_copy_text(name)}\t{{{','.join(map(str, lines))}}}\t"
        f"{{{','.join(map(str, columns))}}}\t{kinds}\t"
        f"{{{','.join(map(_array_item, containers))}}}"
    )


@dataclass(slots=True)
class NameUses:
    """Hold every use of one name in one file, in file order.

    One row per name and file, not per use (code_references): a file uses a
    name about four times on average, and each stored row costs more than
    its values. The lists run in parallel, one entry per use, as do the
    letters of ``kinds`` (KIND_LETTERS); ``columns`` and ``containers`` mean
    what they do in Reference.
    """

    name: str
    lines: list[int]
    columns: list[int]
    kinds: str
    containers: list[str | None]

    def row(self) -> str:
        """Return the code_references row of these uses (reference_row)."""
        return reference_row(
            self.name, self.lines, self.columns, self.kinds, self.containers
        )


@dataclass(slots=True)
class FileAnalysis:
    """Everything one parse of a file yields: its chunks, symbols and uses.

    ``reference_rows`` holds the uses of each name (reference_row).
    """

    chunks: list[Chunk]
    definitions: list[Definition]
    reference_rows: list[str]
