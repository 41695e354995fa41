"""Split source files into search-sized chunks along syntactic boundaries.

Code in one of the tree-sitter languages is cut at definitions: every function,
method, class, interface, struct, enum, trait and impl becomes its own chunk,
and whatever sits outside any definition is gathered into "module" chunks.
Everything else (documentation, configuration, templates, code that does not
parse) is cut into overlapping line windows.  Every chunk is bounded by
``max_chars`` so it fits an embedding model's input.

The module is pure Python on top of ``tree_sitter`` and keeps no Django
dependency, so it can run in worker threads or outside the web process.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from tree_sitter import Language, Node, Parser, Query, QueryCursor, QueryError

__all__ = [
    "Chunk",
    "LANGUAGE_BY_EXTENSION",
    "code_languages",
    "file_chunk",
    "language_for_path",
]


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


# --------------------------------------------------------------------------
# Language detection
# --------------------------------------------------------------------------

LANGUAGE_BY_EXTENSION: dict[str, str] = {
    # Languages chunked through tree-sitter.
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    # Code without a bundled grammar: indexed as line windows.
    ".lua": "lua",
    ".pl": "perl",
    ".pm": "perl",
    ".r": "r",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".clj": "clojure",
    ".elm": "elm",
    ".zig": "zig",
    ".nim": "nim",
    ".jl": "julia",
    ".groovy": "groovy",
    ".gradle": "groovy",
    ".ps1": "powershell",
    ".bat": "batch",
    ".cmd": "batch",
    ".vue": "vue",
    ".svelte": "svelte",
    ".proto": "protobuf",
    ".graphql": "graphql",
    ".gql": "graphql",
    ".tf": "hcl",
    ".hcl": "hcl",
    ".nix": "nix",
    ".cmake": "cmake",
    ".mk": "makefile",
    ".dockerfile": "dockerfile",
    # Documentation and prose.
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".adoc": "asciidoc",
    ".tex": "latex",
    ".org": "org",
    # Configuration and data.
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".jsonc": "json",
    ".json5": "json",
    ".ini": "ini",
    ".cfg": "ini",
    ".conf": "ini",
    ".properties": "properties",
    ".xml": "xml",
    ".xsd": "xml",
    ".xsl": "xml",
    ".plist": "xml",
    ".sql": "sql",
    # Markup, styles and templates.
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".jinja": "html",
    ".jinja2": "html",
    ".j2": "html",
    ".djhtml": "html",
    ".hbs": "html",
    ".mustache": "html",
    ".ejs": "html",
    ".erb": "html",
    ".css": "css",
    ".scss": "css",
    ".sass": "css",
    ".less": "css",
}

# Files recognised by their whole name because they carry no useful extension.
_LANGUAGE_BY_FILENAME: Final[dict[str, str]] = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "cmakelists.txt": "cmake",
    "rakefile": "ruby",
    "gemfile": "ruby",
    "vagrantfile": "ruby",
    "jenkinsfile": "groovy",
    "procfile": "text",
    "readme": "text",
    "license": "text",
    "copying": "text",
    "authors": "text",
    "changelog": "text",
    ".gitignore": "text",
    ".dockerignore": "text",
    ".editorconfig": "ini",
    ".gitattributes": "text",
}

# Accept the spellings callers are likely to use for the canonical names.
_LANGUAGE_ALIASES: Final[dict[str, str]] = {
    "py": "python",
    "js": "javascript",
    "jsx": "javascript",
    "ts": "typescript",
    "golang": "go",
    "rs": "rust",
    "c++": "cpp",
    "cxx": "cpp",
    "c#": "csharp",
    "c_sharp": "csharp",
    "cs": "csharp",
    "rb": "ruby",
    "kt": "kotlin",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
}


# Machine-written files that match an indexed type but only add noise.
_SKIPPED_FILENAMES: Final = frozenset(
    {"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml"}
)
_SKIPPED_SUFFIXES: Final = (".min.js", ".min.css", ".min.mjs")


def language_for_path(path: str) -> str | None:
    """Return the language of ``path`` from its file name, or None to skip it."""
    name = os.path.basename(path.replace("\\", "/")).lower()
    if not name or name in _SKIPPED_FILENAMES or name.endswith(_SKIPPED_SUFFIXES):
        return None
    by_name = _LANGUAGE_BY_FILENAME.get(name)
    if by_name is not None:
        return by_name
    by_extension = LANGUAGE_BY_EXTENSION.get(os.path.splitext(name)[1])
    if by_extension is not None:
        return by_extension
    # Variants such as "Dockerfile.dev" or "Makefile.am" share the base type.
    stem = name.split(".", 1)[0]
    if stem in ("dockerfile", "containerfile", "makefile"):
        return _LANGUAGE_BY_FILENAME[stem]
    return None


# --------------------------------------------------------------------------
# Grammar configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grammar:
    """Describe how to find definitions in one tree-sitter grammar."""

    module: str
    factory: str
    # Each pattern captures one definition node as @def.  Patterns are checked
    # one by one when loading so a node type missing from an installed grammar
    # version drops that pattern instead of the whole language.
    patterns: tuple[str, ...]
    functions: frozenset[str]
    containers: dict[str, str]
    wrappers: frozenset[str] = frozenset()


_JS_FUNCTION_NODES: Final = (
    "arrow_function",
    "function_expression",
    "generator_function",
)
# Object literals holding functions ("const api = {get() {...}}", "X.prototype =
# {...}") act as containers, like classes written before ES2015.
_JS_VALUES: Final = (
    *(f"({node})" for node in _JS_FUNCTION_NODES),
    *(f"(object (pair value: ({node})))" for node in _JS_FUNCTION_NODES),
    "(object (method_definition))",
)
# Spelled out one value type per pattern: tree-sitter 0.26 matches any value
# when an alternation ([...]) sits inside a field of a nested pattern.
_JS_COMMON_PATTERNS: Final = (
    "(function_declaration) @def",
    "(generator_function_declaration) @def",
    "(class_declaration) @def",
    "(method_definition) @def",
    *(
        pattern.format(value=value)
        for pattern in (
            "(lexical_declaration (variable_declarator value: {value})) @def",
            "(variable_declaration (variable_declarator value: {value})) @def",
            "(expression_statement (assignment_expression right: {value})) @def",
        )
        for value in _JS_VALUES
    ),
    *(f"(pair value: ({node})) @def" for node in _JS_FUNCTION_NODES),
)
# Declarations count as functions only when their value is one (see _value).
_JS_FUNCTIONS: Final = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "field_definition",
        "public_field_definition",
        "pair",
    }
)
_TS_PATTERNS: Final = (
    *_JS_COMMON_PATTERNS,
    "(abstract_class_declaration) @def",
    "(interface_declaration) @def",
    "(enum_declaration) @def",
    "(type_alias_declaration) @def",
    *(
        f"(public_field_definition value: ({node})) @def"
        for node in _JS_FUNCTION_NODES
    ),
)
_TS_CONTAINERS: Final = {
    "class_declaration": "class",
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "enum_declaration": "enum",
    "type_alias_declaration": "type",
}
_C_PATTERNS: Final = (
    "(function_definition body: (_)) @def",
    "(struct_specifier body: (_)) @def",
    "(union_specifier body: (_)) @def",
    "(enum_specifier body: (_)) @def",
)
_C_CONTAINERS: Final = {
    "struct_specifier": "struct",
    "union_specifier": "struct",
    "enum_specifier": "enum",
}


def _simple(*node_types: str) -> tuple[str, ...]:
    """Return one capture pattern per node type."""
    return tuple(f"({node_type}) @def" for node_type in node_types)


_GRAMMARS: Final[dict[str, _Grammar]] = {
    "python": _Grammar(
        module="tree_sitter_python",
        factory="language",
        patterns=_simple("function_definition", "class_definition"),
        functions=frozenset({"function_definition"}),
        containers={"class_definition": "class"},
        wrappers=frozenset({"decorated_definition"}),
    ),
    "javascript": _Grammar(
        module="tree_sitter_javascript",
        factory="language",
        patterns=(
            *_JS_COMMON_PATTERNS,
            *(
                f"(field_definition value: ({node})) @def"
                for node in _JS_FUNCTION_NODES
            ),
        ),
        functions=_JS_FUNCTIONS,
        containers={"class_declaration": "class"},
        wrappers=frozenset({"export_statement"}),
    ),
    "typescript": _Grammar(
        module="tree_sitter_typescript",
        factory="language_typescript",
        patterns=_TS_PATTERNS,
        functions=_JS_FUNCTIONS,
        containers=_TS_CONTAINERS,
        wrappers=frozenset({"export_statement", "ambient_declaration"}),
    ),
    "tsx": _Grammar(
        module="tree_sitter_typescript",
        factory="language_tsx",
        patterns=_TS_PATTERNS,
        functions=_JS_FUNCTIONS,
        containers=_TS_CONTAINERS,
        wrappers=frozenset({"export_statement", "ambient_declaration"}),
    ),
    "go": _Grammar(
        module="tree_sitter_go",
        factory="language",
        patterns=_simple(
            "function_declaration", "method_declaration", "type_spec", "type_alias"
        ),
        functions=frozenset({"function_declaration", "method_declaration"}),
        containers={"type_spec": "type", "type_alias": "type"},
    ),
    "rust": _Grammar(
        module="tree_sitter_rust",
        factory="language",
        patterns=_simple(
            "function_item",
            "struct_item",
            "enum_item",
            "union_item",
            "trait_item",
            "impl_item",
        ),
        functions=frozenset({"function_item"}),
        containers={
            "struct_item": "struct",
            "enum_item": "enum",
            "union_item": "struct",
            "trait_item": "trait",
            "impl_item": "impl",
        },
    ),
    "java": _Grammar(
        module="tree_sitter_java",
        factory="language",
        patterns=_simple(
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "annotation_type_declaration",
            "method_declaration",
            "constructor_declaration",
            "compact_constructor_declaration",
        ),
        functions=frozenset(
            {
                "method_declaration",
                "constructor_declaration",
                "compact_constructor_declaration",
            }
        ),
        containers={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "enum_declaration": "enum",
            "record_declaration": "class",
            "annotation_type_declaration": "interface",
        },
    ),
    "c": _Grammar(
        module="tree_sitter_c",
        factory="language",
        patterns=_C_PATTERNS,
        functions=frozenset({"function_definition"}),
        containers=_C_CONTAINERS,
        wrappers=frozenset({"type_definition"}),
    ),
    "cpp": _Grammar(
        module="tree_sitter_cpp",
        factory="language",
        patterns=(*_C_PATTERNS, "(class_specifier body: (_)) @def"),
        functions=frozenset({"function_definition"}),
        containers={**_C_CONTAINERS, "class_specifier": "class"},
        wrappers=frozenset({"type_definition", "template_declaration"}),
    ),
    "csharp": _Grammar(
        module="tree_sitter_c_sharp",
        factory="language",
        patterns=_simple(
            "class_declaration",
            "interface_declaration",
            "struct_declaration",
            "enum_declaration",
            "record_declaration",
            "method_declaration",
            "constructor_declaration",
            "destructor_declaration",
            "operator_declaration",
        ),
        functions=frozenset(
            {
                "method_declaration",
                "constructor_declaration",
                "destructor_declaration",
                "operator_declaration",
            }
        ),
        containers={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "struct_declaration": "struct",
            "enum_declaration": "enum",
            "record_declaration": "class",
        },
    ),
    "ruby": _Grammar(
        module="tree_sitter_ruby",
        factory="language",
        patterns=_simple("method", "singleton_method", "class", "module"),
        functions=frozenset({"method", "singleton_method"}),
        containers={"class": "class", "module": "module"},
    ),
    "php": _Grammar(
        module="tree_sitter_php",
        factory="language_php",
        patterns=_simple(
            "function_definition",
            "method_declaration",
            "class_declaration",
            "interface_declaration",
            "trait_declaration",
            "enum_declaration",
        ),
        functions=frozenset({"function_definition", "method_declaration"}),
        containers={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "trait_declaration": "trait",
            "enum_declaration": "enum",
        },
    ),
    "kotlin": _Grammar(
        module="tree_sitter_kotlin",
        factory="language",
        patterns=_simple(
            "function_declaration",
            "secondary_constructor",
            "class_declaration",
            "object_declaration",
            "companion_object",
        ),
        functions=frozenset({"function_declaration", "secondary_constructor"}),
        containers={
            "class_declaration": "class",
            "object_declaration": "object",
            "companion_object": "object",
        },
    ),
    "swift": _Grammar(
        module="tree_sitter_swift",
        factory="language",
        patterns=_simple(
            "function_declaration",
            "init_declaration",
            "deinit_declaration",
            "class_declaration",
            "protocol_declaration",
        ),
        functions=frozenset(
            {"function_declaration", "init_declaration", "deinit_declaration"}
        ),
        containers={
            "class_declaration": "class",
            "protocol_declaration": "interface",
        },
    ),
    "scala": _Grammar(
        module="tree_sitter_scala",
        factory="language",
        patterns=_simple(
            "function_definition",
            "class_definition",
            "object_definition",
            "trait_definition",
            "enum_definition",
        ),
        functions=frozenset({"function_definition"}),
        containers={
            "class_definition": "class",
            "object_definition": "object",
            "trait_definition": "trait",
            "enum_definition": "enum",
        },
    ),
    "bash": _Grammar(
        module="tree_sitter_bash",
        factory="language",
        patterns=_simple("function_definition"),
        functions=frozenset({"function_definition"}),
        containers={},
    ),
}


@lru_cache(maxsize=1)
def code_languages() -> frozenset[str]:
    """Return the languages chunked along definitions by a tree-sitter grammar."""
    return frozenset(
        name
        for name, grammar in _GRAMMARS.items()
        if importlib.util.find_spec(grammar.module) is not None
    )


@dataclass(frozen=True, slots=True)
class _Loaded:
    """Hold the compiled, shareable parts of one grammar."""

    language: Language
    query: Query


_LOAD_LOCK: Final = threading.Lock()
_LOADED: dict[str, _Loaded | None] = {}
_THREAD_STATE: Final = threading.local()


def _load(language: str) -> _Loaded | None:
    """Return the compiled grammar and query for ``language``, loading once."""
    try:
        return _LOADED[language]
    except KeyError:
        pass
    with _LOAD_LOCK:
        if language not in _LOADED:
            _LOADED[language] = _compile(_GRAMMARS[language])
        return _LOADED[language]


def _compile(grammar: _Grammar) -> _Loaded | None:
    """Build the language object and a query of the patterns it supports."""
    try:
        module = importlib.import_module(grammar.module)
        language = Language(getattr(module, grammar.factory)())
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    usable = []
    for pattern in grammar.patterns:
        try:
            Query(language, pattern)
        except QueryError:
            continue
        usable.append(pattern)
    if not usable:
        return None
    return _Loaded(language=language, query=Query(language, "\n".join(usable)))


def _parser(language: str, loaded: _Loaded) -> Parser:
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


# --------------------------------------------------------------------------
# Size-bounded packing of lines
# --------------------------------------------------------------------------

# Keep tiny max_chars values workable: below this a chunk holds too little code.
_MIN_CHARS: Final = 32
# A context header must not eat the budget of the code it introduces.
_HEADER_SHARE: Final = 4
_HEADER_CAP: Final = 200
# Class chunks list member signatures; very long signatures are cut here.
_SIGNATURE_LINES: Final = 5
# Big files with this average line length are minified or generated: window
# them without paying for a parse.
_MINIFIED_AVERAGE: Final = 300
_MINIFIED_MIN_SIZE: Final = 50_000
# Definitions sharing a line with a sibling, beyond which code counts as
# minified (also at least a tenth of all definitions).
_CROWDED_MIN: Final = 3
# Share of the file inside ERROR nodes above which the parse is not trusted.
_MAX_ERROR_SHARE: Final = 0.5
_MEANINGFUL: Final = re.compile(r"[^\W_]")

Line = tuple[int, str]


def _explode(items: Sequence[Line], budget: int) -> list[Line]:
    """Cut lines longer than ``budget`` into pieces that each fit."""
    if all(len(text) <= budget for _, text in items):
        return list(items)
    out: list[Line] = []
    for row, text in items:
        if len(text) <= budget:
            out.append((row, text))
            continue
        out.extend((row, text[i : i + budget]) for i in range(0, len(text), budget))
    return out


def _pack(
    items: Sequence[Line], budget: int, max_lines: int | None, overlap: int
) -> list[list[Line]]:
    """Group lines into runs of at most ``budget`` chars and ``max_lines`` lines.

    Consecutive runs share up to ``overlap`` lines, but never so many that the
    next run could not also take a new line: every run makes progress.
    """
    lines = _explode(items, budget)
    limit = max_lines if max_lines is not None else len(lines) + 1
    # Count each line with its newline; the joined text is one char shorter.
    allowance = budget + 1
    parts: list[list[Line]] = []
    start = 0
    total = len(lines)
    while start < total:
        size = 0
        end = start
        while end < total:
            cost = len(lines[end][1]) + 1
            if end > start and (size + cost > allowance or end - start >= limit):
                break
            size += cost
            end += 1
        parts.append(lines[start:end])
        if end >= total:
            break
        following = len(lines[end][1]) + 1
        shared = 0
        nxt = end
        while (
            nxt - 1 > start
            and end - nxt < overlap
            and end - nxt < limit - 1
            and shared + len(lines[nxt - 1][1]) + 1 + following <= allowance
        ):
            nxt -= 1
            shared += len(lines[nxt][1]) + 1
        start = nxt
    return parts


def _trim(part: list[Line]) -> list[Line]:
    """Drop blank lines at both ends so line numbers point at content."""
    first = 0
    last = len(part) - 1
    while first <= last and not part[first][1].strip():
        first += 1
    while last >= first and not part[last][1].strip():
        last -= 1
    return part[first : last + 1]


def _emit(
    out: list[Chunk],
    items: Sequence[Line],
    *,
    kind: str,
    symbol: str | None,
    budget: int,
    max_lines: int | None = None,
    overlap: int = 0,
    header: str | None = None,
    span: tuple[int, int] | None = None,
) -> None:
    """Append bounded chunks built from ``items`` to ``out``.

    ``span`` widens the first and last part to the definition's full extent,
    which matters for class chunks whose listed lines skip member bodies.
    """
    body_budget = budget
    prefix = ""
    if header:
        prefix = header + "\n"
        body_budget = max(budget - len(prefix), budget // 2)
    parts: list[list[Line]] | None = None
    if max_lines is None or len(items) <= max_lines:
        # Most definitions fit whole; checking that first skips the packer.
        whole = _trim(list(items))
        if sum([len(text) + 1 for _, text in whole]) <= body_budget + 1:
            parts = [whole] if whole else []
    if parts is None:
        packed = _pack(items, body_budget, max_lines, overlap)
        parts = [trimmed for trimmed in map(_trim, packed) if trimmed]
    for index, part in enumerate(parts):
        content = "\n".join([text for _, text in part])
        if not _MEANINGFUL.search(content):
            continue
        start = part[0][0]
        end = part[-1][0]
        if span is not None:
            if index == 0:
                start = min(start, span[0])
            if index == len(parts) - 1:
                end = max(end, span[1])
        out.append(
            Chunk(
                content=prefix + content,
                start_line=start + 1,
                end_line=end + 1,
                kind=kind,
                symbol=symbol,
            )
        )


def _split_lines(text: str) -> list[str]:
    """Split on LF only, as tree-sitter counts rows, dropping a CR before it."""
    lines = text.split("\n")
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def _window_chunks(
    lines: Sequence[str], budget: int, window_lines: int, overlap_lines: int
) -> list[Chunk]:
    """Cut the whole file into overlapping line windows."""
    out: list[Chunk] = []
    _emit(
        out,
        list(enumerate(lines)),
        kind="window",
        symbol=None,
        budget=budget,
        max_lines=window_lines,
        overlap=overlap_lines,
    )
    return out


# --------------------------------------------------------------------------
# Definitions found in the syntax tree
# --------------------------------------------------------------------------

_NAME_TYPES: Final = frozenset(
    {
        "identifier",
        "type_identifier",
        "simple_identifier",
        "constant",
        "name",
        "word",
        "property_identifier",
        "field_identifier",
    }
)
_BODY_TYPES: Final = frozenset(
    {
        "block",
        "body_statement",
        "class_body",
        "compound_statement",
        "constructor_body",
        "declaration_list",
        "enum_body",
        "enum_class_body",
        "enum_member_declaration_list",
        "enum_variant_list",
        "enumerator_list",
        "field_declaration_list",
        "function_body",
        "indented_block",
        "interface_body",
        "protocol_body",
        "statement_block",
        "template_body",
    }
)
# C/C++ declarators that end the walk down to a function's name.
_C_NAME_TYPES: Final = frozenset(
    {
        "identifier",
        "field_identifier",
        "qualified_identifier",
        "destructor_name",
        "operator_name",
        "template_function",
        "type_identifier",
    }
)
# Ruby allows empty methods, which have no body node but are still definitions.
_OPTIONAL_BODY: Final = frozenset({"method", "singleton_method"})
# JS/TS nodes whose meaning comes from the value they bind.
_DECLARATOR_TYPES: Final = frozenset(
    {"lexical_declaration", "variable_declaration", "expression_statement"}
)
_VALUE_TYPES: Final = _DECLARATOR_TYPES | {
    "field_definition",
    "public_field_definition",
    "pair",
}
_JS_FUNCTION_TYPES: Final = frozenset(_JS_FUNCTION_NODES)
_WHITESPACE: Final = re.compile(r"\s+")


def _last_row(node: Node) -> int:
    """Return the last row holding text of ``node``.

    Some grammars end a node at column 0 of the next row (after its newline);
    that row holds none of the node's text.
    """
    start_row = node.start_point[0]
    end_row, end_column = node.end_point
    if end_column == 0 and end_row > start_row:
        return end_row - 1
    return end_row


def _text(node: Node | None) -> str:
    """Return a node's source text as one whitespace-normalised line."""
    if node is None or node.text is None:
        return ""
    raw = node.text.decode("utf-8", "replace")
    return _WHITESPACE.sub(" ", raw).strip()[:_HEADER_CAP]


def _first_named(node: Node, types: Iterable[str]) -> Node | None:
    """Return the first named child of ``node`` whose type is in ``types``."""
    wanted = frozenset(types)
    for child in node.named_children:
        if child.type in wanted:
            return child
    return None


def _find_descendant(node: Node, node_type: str) -> Node | None:
    """Return the first descendant of ``node`` of ``node_type`` (depth first)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == node_type:
            return current
        stack.extend(reversed(current.named_children))
    return None


def _binds_definition(value: Node) -> bool:
    """Tell whether a JS/TS value is a function or an object holding some."""
    if value.type in _JS_FUNCTION_TYPES:
        return True
    if value.type != "object":
        return False
    for member in value.named_children:
        if member.type == "method_definition":
            return True
        if member.type == "pair":
            inner = member.child_by_field_name("value")
            if inner is not None and inner.type in _JS_FUNCTION_TYPES:
                return True
    return False


@dataclass(slots=True, eq=False)
class _Def:
    """Hold one definition and its rows (0-based, inclusive)."""

    kind: str
    symbol: str
    is_container: bool
    # first_row includes attached comments/attributes, node_row does not.
    first_row: int
    node_row: int
    last_row: int
    header_row: int
    signature_end: int
    parent: _Def | None
    children: list[_Def] = field(default_factory=list)


class _TreeChunker:
    """Turn one parsed file into chunks, keeping the per-file state."""

    def __init__(
        self,
        *,
        language: str,
        grammar: _Grammar,
        lines: list[str],
        budget: int,
        window_lines: int,
        overlap_lines: int,
    ) -> None:
        self.language = language
        self.grammar = grammar
        self.lines = lines
        self.budget = budget
        self.window_lines = window_lines
        self.overlap_lines = overlap_lines
        # Definitions dropped because another one already started on their row.
        self.crowded = 0

    # ---- naming ---------------------------------------------------------

    def _name(self, node: Node) -> tuple[str, Node | None]:
        """Return the definition's own name and the node that carries it."""
        node_type = node.type
        if self.language in ("c", "cpp") and node_type == "function_definition":
            return self._c_function_name(node)
        if node_type in _DECLARATOR_TYPES:
            return self._declarator_name(node)
        if node_type == "pair":
            key = node.child_by_field_name("key")
            return _text(key).strip("\"'`"), key
        if node_type == "impl_item":
            target = node.child_by_field_name("type")
            if target is not None and target.type == "generic_type":
                target = target.child_by_field_name("type") or target
            return _text(target), target
        if node_type == "init_declaration":
            return "init", None
        if node_type == "deinit_declaration":
            return "deinit", None
        if node_type == "secondary_constructor":
            return "constructor", None
        name_node = node.child_by_field_name("name")
        if name_node is None:
            name_node = node.child_by_field_name("property")
        if name_node is None:
            name_node = _first_named(node, _NAME_TYPES)
        if name_node is None:
            if node_type == "companion_object":
                return "Companion", None
            parent = node.parent
            # C's "typedef struct {...} name;" names the struct in the typedef.
            if parent is not None and parent.type == "type_definition":
                declarator = parent.child_by_field_name("declarator")
                return _text(declarator), declarator
            return "", None
        return _text(name_node), name_node

    def _c_function_name(self, node: Node) -> tuple[str, Node | None]:
        """Follow C/C++ declarators down to the function's name."""
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in _C_NAME_TYPES:
            inner = declarator.child_by_field_name("declarator")
            if inner is None:
                inner = _first_named(declarator, _C_NAME_TYPES)
            declarator = inner
        if declarator is None:
            return "", None
        name = _text(declarator)
        if declarator.type == "template_function":
            name = name.split("<", 1)[0].strip()
        return name, declarator

    def _declarator_name(self, node: Node) -> tuple[str, Node | None]:
        """Name a JS/TS declaration or assignment by its target."""
        holder = self._value_holder(node)
        if holder is None:
            return "", None
        if holder.type == "assignment_expression":
            left = holder.child_by_field_name("left")
            return _text(left).replace(" ", ""), left
        name = holder.child_by_field_name("name")
        return _text(name), name

    def _value_holder(self, node: Node) -> Node | None:
        """Return the declarator or assignment binding a JS/TS definition."""
        if node.type == "expression_statement":
            assignment = _first_named(node, ("assignment_expression",))
            right = assignment.child_by_field_name("right") if assignment else None
            if right is None or not _binds_definition(right):
                return None
            return assignment
        for declarator in node.named_children:
            if declarator.type != "variable_declarator":
                continue
            value = declarator.child_by_field_name("value")
            if value is not None and _binds_definition(value):
                return declarator
        return None

    def _value(self, node: Node) -> Node | None:
        """Return the value bound by a JS/TS declaration, field or pair."""
        if node.type not in _DECLARATOR_TYPES:
            return node.child_by_field_name("value")
        holder = self._value_holder(node)
        if holder is None:
            return None
        value = holder.child_by_field_name("value")
        return value if value is not None else holder.child_by_field_name("right")

    def _is_function(self, node: Node) -> bool:
        """Tell whether a captured node is function-like rather than a container."""
        if node.type in _DECLARATOR_TYPES:
            value = self._value(node)
            return value is not None and value.type in _JS_FUNCTION_TYPES
        return node.type in self.grammar.functions

    def _go_receiver(self, node: Node) -> str:
        """Return the receiver type name of a Go method, without pointer/generics."""
        receiver = node.child_by_field_name("receiver")
        if receiver is None:
            return ""
        found = _find_descendant(receiver, "type_identifier")
        return _text(found)

    # ---- classification -------------------------------------------------

    def _container_kind(self, node: Node) -> str:
        """Return the kind of a container, refining by keywords where needed."""
        node_type = node.type
        if node_type in _DECLARATOR_TYPES:
            return "object"
        kind = self.grammar.containers[node_type]
        if self.language == "go":
            spec_type = node.child_by_field_name("type")
            if spec_type is not None and node_type == "type_spec":
                if spec_type.type == "struct_type":
                    return "struct"
                if spec_type.type == "interface_type":
                    return "interface"
            return "type"
        if self.language == "swift" and node_type == "class_declaration":
            keyword = _text(node.child_by_field_name("declaration_kind"))
            return {
                "struct": "struct",
                "enum": "enum",
                "extension": "impl",
                "protocol": "interface",
            }.get(keyword, "class")
        if self.language == "kotlin" and node_type == "class_declaration":
            for child in node.children:
                if child.type == "interface":
                    return "interface"
                if child.type == "modifiers" and "enum" in _text(child).split():
                    return "enum"
        return kind

    def _body(self, node: Node) -> Node | None:
        """Return the body node of a definition, if it has one."""
        body = node.child_by_field_name("body")
        if body is not None:
            return body
        if node.type in _VALUE_TYPES:
            value = self._value(node)
            if value is None:
                return None
            # An object literal is its own body; a function has a body field.
            if value.type == "object":
                return value
            return value.child_by_field_name("body")
        for child in node.named_children:
            if child.type in _BODY_TYPES:
                return child
        return None

    def _outer(self, node: Node) -> Node:
        """Return the node spanning the definition with its wrappers."""
        outer = node
        parent = outer.parent
        while parent is not None and parent.type in self.grammar.wrappers:
            outer = parent
            parent = outer.parent
        # A Go "type X ..." holds one spec; its comments precede the keyword.
        if (
            node.type in ("type_spec", "type_alias")
            and parent is not None
            and parent.type == "type_declaration"
            and sum(
                1
                for child in parent.named_children
                if child.type in ("type_spec", "type_alias")
            )
            == 1
        ):
            outer = parent
        return outer

    def _attached_start(self, outer: Node) -> int:
        """Return the first row of comments/attributes directly above ``outer``."""
        start = outer.start_point[0]
        previous = outer.prev_sibling
        while previous is not None and (
            "comment" in previous.type or previous.type == "attribute_item"
        ):
            if _last_row(previous) < start - 1:
                break
            before = previous.prev_sibling
            # A comment trailing code on the same row belongs to that code.
            if before is not None and _last_row(before) >= previous.start_point[0]:
                break
            start = previous.start_point[0]
            previous = before
        return start

    def _signature_end(self, body: Node | None, node_row: int, last_row: int) -> int:
        """Return the last row of a definition's signature (before its body)."""
        if body is None:
            end = node_row
        else:
            end = body.start_point[0]
            if end > node_row:
                line = self.lines[end] if end < len(self.lines) else ""
                indent = len(line) - len(line.lstrip())
                # A body opening on its own line (Python block, Allman brace)
                # is not part of the signature.
                if body.start_point[1] <= indent:
                    end -= 1
        end = min(end, node_row + _SIGNATURE_LINES - 1, last_row)
        return max(end, node_row)

    def _make_def(self, node: Node, parent: _Def | None) -> _Def | None:
        """Describe ``node`` as a definition, or None when it does not qualify."""
        node_type = node.type
        is_function = self._is_function(node)
        body = self._body(node)
        if is_function and body is None and node_type not in _OPTIONAL_BODY:
            # Declarations without a body (abstract/interface methods,
            # prototypes) stay inside their container's chunk.
            return None
        name, name_node = self._name(node)
        # Scoped names (C++ "A::f", Ruby "A::B", Rust "fmt::X") read as paths.
        name = name.replace("::", ".")
        if not name:
            return None
        if is_function:
            kind = "method" if parent is not None else "function"
            if node_type == "method_declaration" and self.language == "go":
                receiver = self._go_receiver(node)
                kind = "method"
                if receiver:
                    name = f"{receiver}.{name}"
            elif parent is None and "." in name and self.language == "cpp":
                kind = "method"
        else:
            kind = self._container_kind(node)
        symbol = f"{parent.symbol}.{name}" if parent is not None else name
        outer = self._outer(node)
        node_row = outer.start_point[0]
        last_row = max(_last_row(outer), node_row)
        header_row = node.start_point[0]
        if name_node is not None and node_row <= name_node.start_point[0] <= last_row:
            header_row = name_node.start_point[0]
        return _Def(
            kind=kind,
            symbol=symbol,
            is_container=not is_function,
            first_row=self._attached_start(outer),
            node_row=node_row,
            last_row=last_row,
            header_row=header_row,
            signature_end=self._signature_end(body, node_row, last_row),
            parent=parent,
        )

    def _definitions(self, nodes: list[Node]) -> list[_Def]:
        """Nest captured nodes into a definition tree and return its roots."""
        unique: dict[int, Node] = {node.id: node for node in nodes}
        ordered = sorted(unique.values(), key=lambda n: (n.start_byte, -n.end_byte))
        roots: list[_Def] = []
        # (end_byte, definition) of enclosing nodes; None marks a function
        # scope whose nested definitions stay inside the function's chunk.
        stack: list[tuple[int, _Def | None]] = []
        for node in ordered:
            while stack and stack[-1][0] <= node.start_byte:
                stack.pop()
            parent: _Def | None = None
            if stack:
                enclosing = stack[-1][1]
                if enclosing is None or not enclosing.is_container:
                    continue
                parent = enclosing
            definition = self._make_def(node, parent)
            if definition is None:
                continue
            stack.append(
                (node.end_byte, definition if definition.is_container else None)
            )
            (parent.children if parent is not None else roots).append(definition)
        self._separate(roots)
        return roots

    def _separate(self, roots: list[_Def]) -> None:
        """Make sibling definitions claim disjoint rows, dropping the losers."""
        pending: list[list[_Def]] = [roots]
        while pending:
            siblings = pending.pop()
            siblings.sort(key=lambda d: (d.node_row, d.first_row))
            kept: list[_Def] = []
            previous_last = -1
            for definition in siblings:
                if definition.node_row <= previous_last:
                    # Shares its first row with the previous definition (one
                    # line holding two definitions); the rows stay covered by
                    # the previous chunk or by the enclosing chunk.
                    self.crowded += 1
                    continue
                definition.first_row = max(definition.first_row, previous_last + 1)
                previous_last = definition.last_row
                kept.append(definition)
                pending.append(definition.children)
            siblings[:] = kept

    # ---- emission -------------------------------------------------------

    def _header(self, definition: _Def) -> str | None:
        """Return the enclosing container's header line for context."""
        parent = definition.parent
        if parent is None:
            return None
        row = parent.header_row
        if definition.first_row <= row <= definition.last_row:
            return None
        line = self.lines[row].rstrip()
        cap = max(min(_HEADER_CAP, self.budget // _HEADER_SHARE), 1)
        return line[:cap] if line.strip() else None

    def _container_rows(self, definition: _Def) -> list[int]:
        """Return the container's own rows plus its members' signatures."""
        rows: list[int] = []
        cursor = definition.first_row
        for member in definition.children:
            rows.extend(range(cursor, member.first_row))
            rows.extend(range(max(member.node_row, cursor), member.signature_end + 1))
            cursor = max(cursor, member.last_row + 1)
        rows.extend(range(cursor, definition.last_row + 1))
        return rows

    def _emit_definitions(self, roots: list[_Def], out: list[Chunk]) -> None:
        """Append chunks for every definition in the tree."""
        lines = self.lines
        pending = list(reversed(roots))
        while pending:
            definition = pending.pop()
            if definition.is_container:
                rows: Iterable[int] = self._container_rows(definition)
                pending.extend(reversed(definition.children))
            else:
                rows = range(definition.first_row, definition.last_row + 1)
            _emit(
                out,
                [(row, lines[row]) for row in rows],
                kind=definition.kind,
                symbol=definition.symbol,
                budget=self.budget,
                overlap=self.overlap_lines,
                header=self._header(definition),
                span=(definition.first_row, definition.last_row),
            )

    def _emit_module(self, roots: list[_Def], out: list[Chunk]) -> None:
        """Append non-overlapping windows of the rows outside all definitions."""
        lines = self.lines
        runs: list[tuple[int, int]] = []
        cursor = 0
        for definition in roots:
            if definition.first_row > cursor:
                runs.append((cursor, definition.first_row))
            cursor = max(cursor, definition.last_row + 1)
        if cursor < len(lines):
            runs.append((cursor, len(lines)))
        for start, stop in runs:
            _emit(
                out,
                [(row, lines[row]) for row in range(start, stop)],
                kind="module",
                symbol=None,
                budget=self.budget,
                max_lines=self.window_lines,
            )

    def chunk(self, captured: list[Node], broken: bool) -> list[Chunk] | None:
        """Return all chunks of the file, or None if it should be windowed.

        ``broken`` tells that most of the file failed to parse, in which case
        definitions are only trusted if some were found.
        """
        definitions = self._definitions(captured)
        if broken and not definitions:
            return None
        if self.crowded >= _CROWDED_MIN and self.crowded * 10 >= len(captured):
            # Many definitions per line means minified or generated code,
            # where line-based definition chunks would mislabel whole lines.
            return None
        out: list[Chunk] = []
        self._emit_definitions(definitions, out)
        self._emit_module(definitions, out)
        return out


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


def _syntax_chunks(
    *,
    text: str,
    language: str,
    lines: list[str],
    budget: int,
    window_lines: int,
    overlap_lines: int,
) -> list[Chunk] | None:
    """Chunk along definitions, or return None if the file should be windowed."""
    loaded = _load(language)
    if loaded is None:
        return None
    source = text.encode("utf-8", "replace")
    tree = _parser(language, loaded).parse(source)
    root = tree.root_node
    captured = QueryCursor(loaded.query).captures(root).get("def", [])
    # ERROR nodes often still hold well-formed definitions (C macros, an
    # unbalanced #ifdef), so a broken parse is only given up when it yields
    # no definition at all.
    broken = _error_share(root, len(source)) > _MAX_ERROR_SHARE
    if broken and not captured:
        return None
    chunker = _TreeChunker(
        language=language,
        grammar=_GRAMMARS[language],
        lines=lines,
        budget=budget,
        window_lines=window_lines,
        overlap_lines=overlap_lines,
    )
    return chunker.chunk(list(captured), broken)


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
    if not text or text.isspace():
        return []
    budget = max(int(max_chars), _MIN_CHARS)
    window_lines = max(int(window_lines), 1)
    overlap_lines = min(max(int(overlap_lines), 0), window_lines - 1)
    language = (language or "").strip().lower()
    language = _LANGUAGE_ALIASES.get(language, language)
    if "\x00" in text:
        # Grammars read NUL as end of input, and PostgreSQL text cannot hold
        # it; the replacement character keeps every line and its meaning.
        text = text.replace("\x00", "\ufffd")
    lines = _split_lines(text)
    if language in _GRAMMARS and not _looks_minified(text, len(lines)):
        try:
            chunks = _syntax_chunks(
                text=text,
                language=language,
                lines=lines,
                budget=budget,
                window_lines=window_lines,
                overlap_lines=overlap_lines,
            )
        except Exception:  # noqa: BLE001 - any parser surprise falls back below.
            chunks = None
        if chunks is not None:
            return _finish(chunks)
    return _finish(_window_chunks(lines, budget, window_lines, overlap_lines))

