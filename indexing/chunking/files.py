"""Analyse one file: chunks along its definitions when it parses, else line windows.

A file that parses also yields its symbols and references, from the same tree.
"""

from __future__ import annotations

from typing import Final

from tree_sitter import Node, QueryCursor

from indexing.chunking.chunk import Chunk, FileAnalysis
from indexing.chunking.grammars import GRAMMARS
from indexing.chunking.languages import LANGUAGE_ALIASES
from indexing.chunking.parsers import grammar_load, grammar_parser
from indexing.chunking.symbols import file_symbols
from indexing.chunking.tree import TreeChunker
from indexing.chunking.windows import lines_split, window_chunks

# Keep tiny max_chars values workable: below this a chunk holds too little code.
MIN_CHARS: Final = 32
# Big files with this average line length are minified or generated: window
# them without paying for a parse.
_MINIFIED_AVERAGE: Final = 300
_MINIFIED_MIN_SIZE: Final = 50_000
# Share of the file inside ERROR nodes above which the parse is not trusted.
_MAX_ERROR_SHARE: Final = 0.5


def _error_share(root: Node, size: int) -> float:
    """Return the share of the file's bytes covered by top-level parse errors."""
    if root.is_error:
        return 1.0
    if not root.has_error or size == 0:
        return 0.0
    broken = sum(
        child.end_byte - child.start_byte
        for child in root.children
        if child.is_error or child.is_missing
    )
    return broken / size


def _looks_minified(text: str, line_count: int) -> bool:
    """Tell whether the file is minified or generated on a few huge lines."""
    return (
        len(text) >= _MINIFIED_MIN_SIZE
        and len(text) / max(line_count, 1) > _MINIFIED_AVERAGE
    )


def _syntax_analysis(
    *,
    text: str,
    language: str,
    lines: list[str],
    budget: int,
    window_lines: int,
    overlap_lines: int,
    with_symbols: bool,
) -> FileAnalysis | None:
    """Chunk along definitions, or return None if the file should be windowed."""
    loaded = grammar_load(language)
    if loaded is None:
        return None
    source = text.encode("utf-8", "replace")
    tree = grammar_parser(language, loaded).parse(source)
    root = tree.root_node
    # With symbols, one pass over the tree captures them with the definitions.
    captures = QueryCursor(loaded.symbols if with_symbols else loaded.query).captures(
        root
    )
    captured = captures.get("def", [])
    # ERROR nodes often still hold well-formed definitions (C macros, an
    # unbalanced #ifdef), so a broken parse is only given up when it yields
    # no definition at all.
    broken = _error_share(root, len(source)) > _MAX_ERROR_SHARE
    if broken and not captured:
        return None
    chunker = TreeChunker(
        language=language,
        grammar=GRAMMARS[language],
        lines=lines,
        budget=budget,
        window_lines=window_lines,
        overlap_lines=overlap_lines,
    )
    chunks = chunker.chunk(list(captured), broken)
    if chunks is None:
        return None
    analysis = FileAnalysis(chunks=chunks, definitions=[], reference_rows=[])
    if with_symbols:
        analysis.definitions, analysis.reference_rows = file_symbols(
            captures=captures,
            source=source,
            language=language,
            lines=lines,
            found=chunker.found,
        )
    return analysis


def _finish(chunks: list[Chunk]) -> list[Chunk]:
    """Drop repeated chunks and order the rest by position."""
    seen: set[tuple[int, int, str]] = set()
    unique: list[Chunk] = []
    for chunk in chunks:
        key = (chunk.start_line, chunk.end_line, chunk.content)
        if key in seen:
            continue
        seen.add(key)
        unique.append(chunk)
    # Stable: chunks starting on one line keep emission order, which puts a
    # container before its members and the parts of a cut line in sequence.
    unique.sort(key=lambda c: c.start_line)
    return unique


def file_chunk(
    *,
    text: str,
    language: str,
    max_chars: int = 1500,
    window_lines: int = 40,
    overlap_lines: int = 5,
) -> list[Chunk]:
    """Split ``text`` written in ``language`` into bounded, ordered chunks.

    Code in a tree-sitter language is cut at definitions plus "module" chunks
    for the code between them; any other text, and code whose parse is mostly
    errors or which looks minified, is cut into overlapping line windows.
    """
    return file_analyse(
        text=text,
        language=language,
        max_chars=max_chars,
        window_lines=window_lines,
        overlap_lines=overlap_lines,
        with_symbols=False,
    ).chunks


def file_analyse(
    *,
    text: str,
    language: str,
    max_chars: int = 1500,
    window_lines: int = 40,
    overlap_lines: int = 5,
    with_symbols: bool = True,
) -> FileAnalysis:
    """Return a file's chunks (as file_chunk) and, from the same parse, its symbols.

    Definitions and references come only from a file chunked along its
    definitions; a windowed file has none.
    """
    if not text or text.isspace():
        return FileAnalysis(chunks=[], definitions=[], reference_rows=[])
    budget = max(int(max_chars), MIN_CHARS)
    window_lines = max(int(window_lines), 1)
    overlap_lines = min(max(int(overlap_lines), 0), window_lines - 1)
    language = (language or "").strip().lower()
    language = LANGUAGE_ALIASES.get(language, language)
    if "\x00" in text:
        # Grammars read NUL as end of input, and PostgreSQL text cannot hold
        # it; the replacement character keeps every line and its meaning.
        text = text.replace("\x00", "\ufffd")
    lines = lines_split(text)
    if language in GRAMMARS and not _looks_minified(text, len(lines)):
        try:
            analysis = _syntax_analysis(
                text=text,
                language=language,
                lines=lines,
                budget=budget,
                window_lines=window_lines,
                overlap_lines=overlap_lines,
                with_symbols=with_symbols,
            )
        except Exception:
            # Any parser surprise falls back to line windows below.
            analysis = None
        if analysis is not None:
            analysis.chunks = _finish(analysis.chunks)
            return analysis
    chunks = _finish(window_chunks(lines, budget, window_lines, overlap_lines))
    return FileAnalysis(chunks=chunks, definitions=[], reference_rows=[])
