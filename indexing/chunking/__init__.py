"""Split source files into search-sized chunks along syntactic boundaries.

Code in one of the tree-sitter languages is cut at definitions: every function,
method, class, interface, struct, enum, trait and impl becomes its own chunk,
and whatever sits outside any definition is gathered into "module" chunks.
Everything else (documentation, configuration, templates, code that does not
parse) is cut into overlapping line windows.  Every chunk is bounded by
``max_chars`` so it fits an embedding model's input.

The package is pure Python on top of ``tree_sitter`` and keeps no Django
dependency, so it can run in worker threads or outside the web process:
``languages`` (file name -> language) and ``grammars`` (per-language node
tables) are data; ``files`` picks the algorithm, ``tree`` cuts at
definitions, ``windows`` packs lines, ``parsers`` loads grammars, and
``symbols`` reads definitions and references from the same parse.
"""

from indexing.chunking.chunk import (
    Chunk,
    Definition,
    FileAnalysis,
    NameUses,
    Reference,
    reference_row,
)
from indexing.chunking.files import file_analyse, file_chunk
from indexing.chunking.grammars import code_languages
from indexing.chunking.languages import LANGUAGE_BY_EXTENSION, language_for_path

__all__ = [
    "Chunk",
    "Definition",
    "FileAnalysis",
    "NameUses",
    "reference_row",
    "Reference",
    "file_analyse",
    "LANGUAGE_BY_EXTENSION",
    "code_languages",
    "file_chunk",
    "language_for_path",
]
