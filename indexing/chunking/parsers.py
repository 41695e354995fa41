"""Load each grammar once per process and a parser once per thread."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Final

from tree_sitter import Language, Parser, Query, QueryError

from indexing.chunking.grammars import (
    GRAMMARS,
    IMPORT_PATTERNS,
    REFERENCE_PATTERNS,
    Grammar,
    structure_patterns,
)


@dataclass(frozen=True, slots=True)
class LoadedGrammar:
    """Hold the compiled, shareable parts of one grammar."""

    language: Language
    # The definitions the chunker cuts at, as @def.
    query: Query
    # The same and, for symbols and references, in one pass over the tree:
    # module-level declarations, name nodes, the call, member and type nodes
    # that classify them, and import statements.
    symbols: Query


_LOAD_LOCK: Final = threading.Lock()
_LOADED: dict[str, LoadedGrammar | None] = {}
_THREAD_STATE: Final = threading.local()


def grammar_load(language: str) -> LoadedGrammar | None:
    """Return the compiled grammar and query for ``language``, loading once."""
    try:
        return _LOADED[language]
    except KeyError:
        pass
    with _LOAD_LOCK:
        if language not in _LOADED:
            _LOADED[language] = _compile(GRAMMARS[language])
        return _LOADED[language]


def _compile(grammar: Grammar) -> LoadedGrammar | None:
    """Build the language object and a query of the patterns it supports."""
    try:
        module = importlib.import_module(grammar.module)
        language = Language(getattr(module, grammar.factory)())
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    definitions = _query(language, grammar.patterns)
    if definitions is None:
        return None
    symbols = _query(
        language,
        grammar.patterns
        + grammar.declarations
        + REFERENCE_PATTERNS
        + structure_patterns(_node_types(language))
        + IMPORT_PATTERNS,
    )
    return LoadedGrammar(
        language=language, query=definitions, symbols=symbols or definitions
    )


def _node_types(language: Language) -> set[str]:
    """Return the named node types of a grammar, supertypes left out."""
    supertypes = {language.node_kind_for_id(kind) for kind in language.supertypes}
    named = {
        language.node_kind_for_id(kind)
        for kind in range(language.node_kind_count)
        if language.node_kind_is_named(kind)
    }
    return {name for name in named if name is not None} - supertypes


def _query(language: Language, patterns: tuple[str, ...]) -> Query | None:
    """Compile the patterns this grammar version supports into one query."""
    usable = []
    for pattern in patterns:
        try:
            Query(language, pattern)
        except QueryError:
            continue
        usable.append(pattern)
    return Query(language, "\n".join(usable)) if usable else None


def grammar_parser(language: str, loaded: LoadedGrammar) -> Parser:
    """Return this thread's parser for ``language``; parsers are not shareable."""
    parsers: dict[str, Parser] | None = getattr(_THREAD_STATE, "parsers", None)
    if parsers is None:
        parsers = {}
        _THREAD_STATE.parsers = parsers
    parser = parsers.get(language)
    if parser is None:
        parser = Parser(loaded.language)
        parsers[language] = parser
    return parser
