"""Tests for indexing.chunking: definition chunks, size bounds and fallbacks."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexing.chunking import (
    LANGUAGE_BY_EXTENSION,
    Chunk,
    code_languages,
    file_chunk,
    language_for_path,
)

FIXTURES = Path(__file__).parent / "fixtures" / "chunking"

# fixture file -> (symbol, kind, start_line, end_line) that must appear exactly.
EXPECTED: dict[str, list[tuple[str, str, int, int]]] = {
    "sample.py": [
        ("Base", "class", 9, 15),
        ("Base.reset", "method", 14, 15),
        ("Parser", "class", 18, 42),
        ("Parser.__init__", "method", 22, 24),
        ("Parser.parse_header", "method", 26, 32),
        ("Parser.split_lines", "method", 34, 36),
        ("Parser.Options", "class", 38, 42),
        ("Parser.Options.describe", "method", 41, 42),
        ("Header", "class", 45, 48),
        ("parse_all", "function", 51, 58),
    ],
    "sample.js": [
        ("RecentList", "class", 5, 27),
        ("RecentList.constructor", "method", 9, 12),
        ("RecentList.push", "method", 14, 20),
        ("RecentList.from", "method", 22, 26),
        ("formatItem", "function", 29, 31),
        ("loadItems", "function", 33, 36),
        ("render", "function", 38, 40),
    ],
    "sample.ts": [
        ("Shape", "interface", 3, 6),
        ("Color", "enum", 8, 11),
        ("Point", "type", 13, 13),
        ("Circle", "class", 15, 27),
        ("Circle.constructor", "method", 18, 18),
        ("Circle.area", "method", 20, 22),
        ("Circle.scale", "method", 24, 26),
        ("Store", "class", 29, 38),
        ("Store.add", "method", 34, 37),
        ("totalArea", "function", 40, 42),
        ("origin", "function", 44, 44),
    ],
    "sample.tsx": [
        ("CounterProps", "interface", 3, 6),
        ("Counter", "function", 8, 15),
        ("Badge", "function", 17, 19),
        ("Panel", "class", 21, 29),
        ("Panel.handleClick", "method", 22, 24),
        ("Panel.render", "method", 26, 28),
    ],
    "sample.go": [
        ("Getter", "interface", 11, 14),
        ("Store", "struct", 16, 20),
        ("Key", "type", 22, 22),
        ("New", "function", 24, 27),
        ("Store.Get", "method", 29, 38),
        ("Store.Set", "method", 40, 44),
        ("Key.String", "method", 46, 48),
    ],
    "sample.rs": [
        ("Point", "struct", 4, 9),
        ("Shape", "enum", 11, 14),
        ("Area", "trait", 16, 22),
        ("Area.describe", "method", 19, 21),
        ("Shape", "impl", 24, 31),
        ("Shape.area", "method", 25, 30),
        ("Point", "impl", 33, 37),
        ("Point.fmt", "method", 34, 36),
        ("count_by_kind", "function", 39, 49),
    ],
    "Sample.java": [
        ("Inventory", "class", 6, 36),
        ("Inventory.Inventory", "method", 10, 11),
        ("Inventory.add", "method", 13, 18),
        ("Inventory.toString", "method", 20, 23),
        ("Inventory.Entry", "class", 25, 35),
        ("Inventory.Entry.Entry", "method", 28, 30),
        ("Inventory.Entry.name", "method", 32, 34),
        ("Counter", "interface", 38, 40),
        ("Status", "enum", 42, 49),
        ("Status.isActive", "method", 46, 48),
    ],
    "sample.c": [
        ("point", "struct", 6, 9),
        ("person_t", "struct", 11, 14),
        ("color", "enum", 16, 16),
        ("add", "function", 18, 20),
        ("print_point", "function", 22, 25),
        ("copy_name", "function", 27, 34),
        ("main", "function", 36, 40),
    ],
    "sample.cpp": [
        ("Shape", "class", 6, 14),
        ("Shape.label", "method", 11, 13),
        ("Rect", "class", 16, 29),
        ("Rect.Rect", "method", 18, 18),
        ("Rect.area", "method", 20, 22),
        ("Rect.scale", "method", 31, 34),
        ("Stats", "struct", 36, 39),
        ("sum", "function", 41, 48),
        ("main", "function", 52, 55),
    ],
    "Sample.cs": [
        ("IPriced", "interface", 6, 9),
        ("Currency", "enum", 11, 15),
        ("Money", "struct", 17, 21),
        ("Invoice", "class", 23, 55),
        ("Invoice.Invoice", "method", 28, 31),
        ("Invoice.AddLine", "method", 37, 44),
        ("Invoice.Total", "method", 46, 54),
    ],
    "sample.rb": [
        ("Billing", "module", 3, 33),
        ("Billing.Invoice", "class", 6, 28),
        ("Billing.Invoice.initialize", "method", 9, 12),
        ("Billing.Invoice.add_line", "method", 14, 18),
        ("Billing.Invoice.total", "method", 20, 22),
        ("Billing.Invoice.from_json", "method", 24, 27),
        ("Billing.version", "method", 30, 32),
        ("main", "function", 35, 39),
    ],
    "sample.php": [
        ("Priced", "interface", 7, 10),
        ("Loggable", "trait", 12, 18),
        ("Loggable.log", "method", 14, 17),
        ("Invoice", "class", 20, 42),
        ("Invoice.__construct", "method", 26, 28),
        ("Invoice.addLine", "method", 30, 36),
        ("Invoice.price", "method", 38, 41),
        ("format_price", "function", 44, 47),
    ],
    "sample.kt": [
        ("Shape", "interface", 5, 7),
        ("Circle", "class", 9, 17),
        ("Circle.area", "method", 10, 12),
        ("Circle.scale", "method", 14, 16),
        ("Kind", "enum", 19, 22),
        ("Registry", "object", 24, 30),
        ("Registry.register", "method", 27, 29),
        ("totalArea", "function", 32, 34),
    ],
    "sample.swift": [
        ("Shape", "interface", 3, 5),
        ("Circle", "struct", 7, 13),
        ("Circle.area", "method", 10, 12),
        ("Kind", "enum", 15, 18),
        ("Registry", "class", 20, 29),
        ("Registry.init", "method", 23, 24),
        ("Registry.register", "method", 26, 28),
        ("Circle", "impl", 31, 35),
        ("Circle.scaled", "method", 32, 34),
        ("totalArea", "function", 37, 39),
    ],
    "sample.scala": [
        ("Shape", "trait", 5, 8),
        ("Shape.describe", "method", 7, 7),
        ("Circle", "class", 10, 17),
        ("Circle.area", "method", 11, 13),
        ("Circle.scale", "method", 15, 16),
        ("Registry", "object", 19, 25),
        ("Registry.register", "method", 22, 24),
        ("totalArea", "function", 27, 28),
    ],
    "sample.sh": [
        ("log", "function", 6, 8),
        ("cleanup", "function", 10, 13),
    ],
}

# fixture file -> (method or nested symbol, first line of its content).
HEADERS: dict[str, list[tuple[str, str]]] = {
    "sample.py": [
        ("Parser.parse_header", "class Parser(Base):"),
        ("Parser.Options", "class Parser(Base):"),
        ("Parser.Options.describe", "class Options:"),
    ],
    "sample.js": [("RecentList.push", "class RecentList extends Array {")],
    "sample.ts": [("Circle.area", "export class Circle implements Shape {")],
    "sample.tsx": [
        (
            "Panel.handleClick",
            "export class Panel extends React.Component<{ title: string }> {",
        )
    ],
    "sample.rs": [
        ("Shape.area", "impl Area for Shape {"),
        ("Area.describe", "pub trait Area {"),
    ],
    "Sample.java": [
        ("Inventory.add", "public class Inventory {"),
        ("Inventory.Entry.name", "public static class Entry {"),
    ],
    "sample.cpp": [("Rect.area", "class Rect : public Shape {")],
    "Sample.cs": [("Invoice.AddLine", "public class Invoice : IPriced")],
    "sample.rb": [
        ("Billing.Invoice.total", "class Invoice"),
        ("Billing.version", "module Billing"),
    ],
    "sample.php": [("Invoice.addLine", "final class Invoice implements Priced")],
    "sample.kt": [("Circle.scale", "data class Circle(val radius: Double) : Shape {")],
    "sample.swift": [("Circle.scaled", "extension Circle {")],
    "sample.scala": [
        ("Circle.area", "case class Circle(radius: Double) extends Shape {")
    ],
}

# fixture file -> (start_line, end_line) of module chunks outside definitions.
MODULE_CHUNKS: dict[str, list[tuple[int, int]]] = {
    "sample.py": [(1, 6), (61, 62)],
    "sample.go": [(1, 9)],
    "sample.sh": [(1, 4), (15, 17)],
    "sample.js": [(1, 3), (42, 42)],
}


def read_fixture(name: str) -> str:
    """Return a fixture's text exactly as stored (LF line endings)."""
    return (FIXTURES / name).read_bytes().decode("utf-8")


def chunk_fixture(name: str, **options: int) -> list[Chunk]:
    """Chunk a fixture with the language its name maps to."""
    language = language_for_path(name)
    assert language is not None, name
    return file_chunk(text=read_fixture(name), language=language, **options)


def by_symbol(chunks: list[Chunk], symbol: str) -> list[Chunk]:
    """Return the chunks carrying ``symbol``."""
    return [chunk for chunk in chunks if chunk.symbol == symbol]


def assert_well_formed(chunks: list[Chunk], max_chars: int) -> None:
    """Check the invariants every chunk list must satisfy."""
    keys = [(c.start_line, c.end_line, c.content) for c in chunks]
    assert len(keys) == len(set(keys)), "duplicate chunk"
    starts = [c.start_line for c in chunks]
    assert starts == sorted(starts)
    for chunk in chunks:
        assert 1 <= chunk.start_line <= chunk.end_line
        assert chunk.content.strip()
        assert len(chunk.content) <= max_chars
        # Only windows and module-level code lack a symbol; a Ruby module
        # definition is kind "module" too but is named.
        if chunk.symbol is None:
            assert chunk.kind in ("window", "module")
        else:
            assert chunk.kind != "window"


def test_fixtures_cover_every_grammar_language() -> None:
    covered = {language_for_path(name) for name in EXPECTED}
    assert covered == set(code_languages())
    assert len(covered) == 16


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_definitions(name: str) -> None:
    chunks = chunk_fixture(name)
    found = {(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks}
    missing = [item for item in EXPECTED[name] if item not in found]
    assert not missing, f"missing {missing}; got {sorted(found, key=str)}"
    assert_well_formed(chunks, 1500)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_definition_chunks_hold_exact_source_lines(name: str) -> None:
    lines = read_fixture(name).split("\n")
    chunks = chunk_fixture(name)
    for symbol, kind, start, end in EXPECTED[name]:
        if kind != "function":
            continue
        (chunk,) = [c for c in by_symbol(chunks, symbol) if c.kind == kind]
        assert chunk.content == "\n".join(lines[start - 1 : end])


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_member_content_starts_with_enclosing_header(name: str) -> None:
    lines = read_fixture(name).split("\n")
    chunks = chunk_fixture(name)
    for symbol, header in HEADERS[name]:
        (chunk,) = by_symbol(chunks, symbol)
        first, rest = chunk.content.split("\n", 1)
        assert first.strip() == header
        if chunk.kind == "method":
            # The header is context only: the rest is the method's own lines.
            own = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
            assert rest == own


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nothing_meaningful_is_lost(name: str) -> None:
    lines = read_fixture(name).split("\n")
    chunks = chunk_fixture(name)
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    lost = [
        number
        for number, line in enumerate(lines, start=1)
        if re.search(r"[^\W_]", line) and number not in covered
    ]
    assert not lost


@pytest.mark.parametrize("name", sorted(MODULE_CHUNKS))
def test_module_chunks_hold_code_outside_definitions(name: str) -> None:
    chunks = chunk_fixture(name)
    modules = [(c.start_line, c.end_line) for c in chunks if c.kind == "module"]
    assert modules == MODULE_CHUNKS[name]


def test_module_chunks_never_repeat_lines() -> None:
    text = "\n".join(f"SETTING_{i} = {i}" for i in range(1, 121)) + "\n"
    chunks = file_chunk(text=text, language="python", window_lines=40)
    assert [(c.start_line, c.end_line) for c in chunks] == [
        (1, 40),
        (41, 80),
        (81, 120),
    ]
    assert {c.kind for c in chunks} == {"module"}


def test_class_chunk_lists_member_signatures_not_bodies() -> None:
    chunks = chunk_fixture("sample.py")
    (parser,) = by_symbol(chunks, "Parser")
    assert parser.content.startswith("# Parser keeps the parsed headers")
    assert "def parse_header(self, line: str)" in parser.content
    assert "@staticmethod" in parser.content
    assert "class Options:" in parser.content
    assert "HEADER_RE.match" not in parser.content
    assert "self.strict = strict" not in parser.content
    assert '"""Hold parser options."""' not in parser.content


def test_bodiless_declarations_stay_in_their_container() -> None:
    ts_chunks = chunk_fixture("sample.ts")
    assert not by_symbol(ts_chunks, "Store.key")
    (store,) = by_symbol(ts_chunks, "Store")
    assert "abstract key(item: T): string;" in store.content
    java_chunks = chunk_fixture("Sample.java")
    assert not by_symbol(java_chunks, "Counter.count")
    (counter,) = by_symbol(java_chunks, "Counter")
    assert "int count();" in counter.content
    rust_chunks = chunk_fixture("sample.rs")
    assert not by_symbol(rust_chunks, "Area.area")


def test_leading_comments_and_attributes_belong_to_the_definition() -> None:
    (point,) = by_symbol(chunk_fixture("sample.rs"), "Point")[:1]
    assert point.content.startswith("/// A 2D point.\n#[derive(Debug, Clone, Copy)]")
    (get,) = by_symbol(chunk_fixture("sample.go"), "Store.Get")
    assert get.content.startswith("// Get returns the value stored under key.")


JS_OBJECTS = """\
const defaults = {
  limit: 10,
};

const api = {
  get(id) {
    return fetch(id);
  },
  put: async (id, body) => {
    return send(id, body);
  },
};

Widget.prototype.render = function () {
  return this.el;
};
"""


def test_javascript_object_literals_and_assignments() -> None:
    chunks = file_chunk(text=JS_OBJECTS, language="javascript")
    found = [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks]
    assert found == [
        (None, "module", 1, 3),
        ("api", "object", 5, 12),
        ("api.get", "method", 6, 8),
        ("api.put", "method", 9, 11),
        ("Widget.prototype.render", "function", 14, 16),
    ]
    (put,) = by_symbol(chunks, "api.put")
    assert put.content.startswith("const api = {\n  put: async (id, body) => {")


def make_function(name: str, count: int, indent: str = "") -> str:
    """Return a Python function of ``count`` numbered statement lines."""
    body = "\n".join(
        f"{indent}    total_{i} = compute_value({i}) + offset_{i}" for i in range(count)
    )
    return f"{indent}def {name}(offset):\n{body}\n{indent}    return total_0\n"


def test_long_function_splits_into_overlapping_parts() -> None:
    text = "import math\n\n\n" + make_function("big", 120) + "\n\ndef small():\n"
    text += "    return 1\n"
    lines = text.split("\n")
    chunks = file_chunk(text=text, language="python", max_chars=800, overlap_lines=3)
    parts = by_symbol(chunks, "big")
    assert len(parts) > 3
    assert {part.kind for part in parts} == {"function"}
    assert parts[0].start_line == 4
    assert parts[-1].end_line == 4 + 121
    for part in parts:
        assert len(part.content) <= 800
        assert part.content == "\n".join(lines[part.start_line - 1 : part.end_line])
    for previous, following in pairwise(parts):
        assert previous.start_line < following.start_line <= previous.end_line
        assert previous.end_line - following.start_line + 1 == 3
        assert following.end_line > previous.end_line
    (small,) = by_symbol(chunks, "small")
    assert (small.start_line, small.end_line) == (128, 129)


def test_long_method_parts_keep_header_and_symbol() -> None:
    text = "class Engine(Base):\n" + make_function("run", 80, indent="    ")
    chunks = file_chunk(text=text, language="python", max_chars=600)
    parts = by_symbol(chunks, "Engine.run")
    assert len(parts) > 2
    for part in parts:
        assert part.kind == "method"
        assert part.content.startswith("class Engine(Base):\n")
        assert len(part.content) <= 600
    assert parts[0].start_line == 2
    assert parts[-1].end_line == 83


def test_minified_line_is_hard_cut() -> None:
    calls = "".join(f"function f{i}(a){{return a+{i}}};" for i in range(4000))
    text = "!function(){" + calls + "}();\n"
    chunks = file_chunk(text=text, language="javascript", max_chars=1000)
    assert len(chunks) >= len(text) // 1000
    for chunk in chunks:
        assert len(chunk.content) <= 1000
        assert (chunk.start_line, chunk.end_line) == (1, 1)
    assert "".join(c.content for c in chunks) == text.rstrip("\n")


def test_long_line_inside_function_is_cut_but_keeps_symbol() -> None:
    text = "def payload():\n    data = '" + "x1" * 3000 + "'\n    return data\n"
    chunks = file_chunk(text=text, language="python", max_chars=500)
    assert {c.symbol for c in chunks} == {"payload"}
    assert max(len(c.content) for c in chunks) <= 500
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == 3


def test_markdown_falls_back_to_overlapping_windows() -> None:
    lines = [f"Paragraph line {i} about the project." for i in range(1, 101)]
    text = "\n".join(lines) + "\n"
    chunks = file_chunk(
        text=text, language="markdown", window_lines=40, overlap_lines=5
    )
    assert [(c.start_line, c.end_line) for c in chunks] == [
        (1, 40),
        (36, 75),
        (71, 100),
    ]
    assert {(c.kind, c.symbol) for c in chunks} == {("window", None)}
    for chunk in chunks:
        assert chunk.content == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])


def test_yaml_windows_are_bounded_by_max_chars() -> None:
    lines = [f"key_{i}: {'v' * 70}" for i in range(1, 61)]
    text = "\n".join(lines)
    chunks = file_chunk(text=text, language="yaml", max_chars=400, overlap_lines=2)
    assert len(chunks) > 10
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == 60
    for chunk in chunks:
        assert chunk.kind == "window"
        assert len(chunk.content) <= 400
        assert chunk.content == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
    for previous, following in pairwise(chunks):
        assert previous.start_line < following.start_line <= previous.end_line + 1


def test_code_shaped_markdown_is_not_parsed() -> None:
    text = "def looks_like_code():\n    return 1\n"
    (chunk,) = file_chunk(text=text, language="markdown")
    assert chunk.kind == "window"


def test_crlf_keeps_line_numbers() -> None:
    text = read_fixture("sample.py")
    expected = [
        (c.start_line, c.end_line, c.kind, c.symbol, c.content)
        for c in file_chunk(text=text, language="python")
    ]
    crlf = file_chunk(text=text.replace("\n", "\r\n"), language="python")
    assert [
        (c.start_line, c.end_line, c.kind, c.symbol, c.content) for c in crlf
    ] == expected
    assert all("\r" not in c.content for c in crlf)


@pytest.mark.parametrize("text", ["", "\n\n", "   \t\n  \r\n"])
def test_empty_and_blank_text_give_no_chunks(text: str) -> None:
    assert file_chunk(text=text, language="python") == []
    assert file_chunk(text=text, language="markdown") == []


def test_punctuation_only_leftovers_are_not_chunks() -> None:
    text = "const a = 1;\nfunction f() {\n  return a;\n}\n;;\n"
    chunks = file_chunk(text=text, language="javascript")
    assert [(c.start_line, c.end_line, c.kind) for c in chunks] == [
        (1, 1, "module"),
        (2, 4, "function"),
    ]


BROKEN_INPUTS = [
    "def f(:\n  return )))\n",
    "class {{{{ ((( def fn ]]]]\n" * 20,
    "}}}}}}\n{{{{{{\n",
    "\x00\x00def f():\x00\n    return 1\x00\n",
    "\ud800 lone surrogate\nx = 1\n",
    "a\rb\rc\r",
    "\n" * 5000,
    "x" * 20000,
    "/*" + "unterminated comment " * 500,
]


@pytest.mark.parametrize("language", sorted(code_languages() | {"yaml", "unknown"}))
def test_broken_input_never_crashes(language: str) -> None:
    for text in BROKEN_INPUTS:
        chunks = file_chunk(text=text, language=language, max_chars=300)
        assert_well_formed(chunks, 300)


CODE_TOKENS = [
    "def ",
    "class ",
    "fn ",
    "func ",
    "function ",
    "impl ",
    "struct ",
    "name",
    "x",
    "(",
    ")",
    "{",
    "}",
    ":",
    ";",
    "=",
    " ",
    "    ",
    "\n",
    "\r\n",
    "\r",
    "\x00",
    "#",
    "//",
    "/*",
    "*/",
    '"',
    "'",
    "<?php",
    "end",
    "é",
    "\ud800",
    "a" * 90,
]


@settings(max_examples=150, deadline=None, database=None)
@given(
    tokens=st.lists(st.sampled_from(CODE_TOKENS), max_size=300),
    language=st.sampled_from(sorted(code_languages() | {"markdown"})),
    max_chars=st.integers(min_value=1, max_value=400),
    window_lines=st.integers(min_value=1, max_value=12),
    overlap_lines=st.integers(min_value=0, max_value=15),
)
def test_random_input_keeps_invariants(
    tokens: list[str],
    language: str,
    max_chars: int,
    window_lines: int,
    overlap_lines: int,
) -> None:
    text = "".join(tokens)
    chunks = file_chunk(
        text=text,
        language=language,
        max_chars=max_chars,
        window_lines=window_lines,
        overlap_lines=overlap_lines,
    )
    # Values below the module's floor are raised to it; 32 chars is the floor.
    assert_well_formed(chunks, max(max_chars, 32))
    lines = text.split("\n")
    covered = set()
    for chunk in chunks:
        assert chunk.end_line <= len(lines)
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    for number, line in enumerate(lines, start=1):
        if re.search(r"[^\W_]", line.replace("\x00", "")):
            assert number in covered


def test_mostly_broken_code_falls_back_to_windows() -> None:
    text = "def ((((( ]]]\n" * 30
    chunks = file_chunk(text=text, language="python", window_lines=10, overlap_lines=2)
    assert chunks
    assert {c.kind for c in chunks} == {"window"}


def test_nul_bytes_keep_definitions_and_lines() -> None:
    text = "x = '\x00'\n\n\ndef after_nul():\n    return '\x00'\n"
    chunks = file_chunk(text=text, language="python")
    (func,) = by_symbol(chunks, "after_nul")
    assert (func.start_line, func.end_line) == (4, 5)
    # PostgreSQL text columns reject NUL, so it never reaches a chunk.
    assert all("\x00" not in chunk.content for chunk in chunks)


def test_identical_definitions_on_different_lines_are_kept() -> None:
    text = "def twin():\n    return 1\n\n\ndef twin():\n    return 1\n"
    chunks = by_symbol(file_chunk(text=text, language="python"), "twin")
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 2), (5, 6)]


def test_output_is_deterministic_and_thread_safe() -> None:
    names = sorted(EXPECTED) * 4
    sequential = [chunk_fixture(name, max_chars=400) for name in names]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda n: chunk_fixture(n, max_chars=400), names))
    assert threaded == sequential


def test_language_names_accept_aliases_and_case() -> None:
    chunks = file_chunk(text="def f():\n    return 1\n", language="Py")
    assert [(c.kind, c.symbol) for c in chunks] == [("function", "f")]


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("src/app/models.py", "python"),
        ("web/App.TSX", "tsx"),
        ("web/index.ts", "typescript"),
        ("web/legacy.jsx", "javascript"),
        ("cmd/main.go", "go"),
        ("src/lib.rs", "rust"),
        ("Main.java", "java"),
        ("include/util.h", "c"),
        ("src/util.hpp", "cpp"),
        ("Program.cs", "csharp"),
        ("lib/task.rb", "ruby"),
        ("index.php", "php"),
        ("build.gradle.kts", "kotlin"),
        ("App.swift", "swift"),
        ("Main.scala", "scala"),
        ("scripts/run.sh", "bash"),
        ("docs/README.md", "markdown"),
        ("config/settings.yaml", "yaml"),
        (".github/workflows/ci.yml", "yaml"),
        ("pyproject.toml", "toml"),
        ("schema.sql", "sql"),
        ("templates/base.html", "html"),
        ("static/site.css", "css"),
        ("Dockerfile", "dockerfile"),
        ("docker/Dockerfile.dev", "dockerfile"),
        ("Makefile", "makefile"),
        ("Makefile.am", "makefile"),
        ("tools/makefile.py", "python"),
        ("C:\\repo\\notes.txt", "text"),
        ("setup.cfg", "ini"),
        ("image.png", None),
        ("archive.tar.gz", None),
        ("bundle.min.js", None),
        ("package-lock.json", None),
        (".env", None),
        ("", None),
    ],
)
def test_language_for_path(path: str, language: str | None) -> None:
    assert language_for_path(path) == language


def test_extension_table_maps_required_types() -> None:
    assert LANGUAGE_BY_EXTENSION[".py"] == "python"
    assert LANGUAGE_BY_EXTENSION[".tsx"] == "tsx"
    assert LANGUAGE_BY_EXTENSION[".md"] == "markdown"
    assert LANGUAGE_BY_EXTENSION[".yaml"] == "yaml"
    assert LANGUAGE_BY_EXTENSION[".sql"] == "sql"
    assert LANGUAGE_BY_EXTENSION[".html"] == "html"
    assert all(
        ext.startswith(".") and ext == ext.lower() for ext in LANGUAGE_BY_EXTENSION
    )
