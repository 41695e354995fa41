"""Read a parsed file's definitions and the uses of names, for navigation.

Definitions come from the same definition tree the chunker cuts along, plus
module-level declarations (constants, variables, type aliases, modules) the
grammar tables name. References are the identifier nodes of the tree that are
not a definition's own name; strings and comments hold no identifier nodes,
so they never count. Resolution is by name, as in tree-sitter's tags: a call
of `save` refers to every definition named `save`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import Final

from tree_sitter import Node

from indexing.chunking.chunk import KIND_LETTERS, Definition, reference_row
from indexing.chunking.grammars import (
    CALLEE_FIELDS,
    DECLARATION_KINDS,
    MEMBER_FIELDS,
    MEMBER_NODES,
)
from indexing.chunking.tree import TreeDefinition

# Longest signature and doc text kept per symbol; an outline needs the head.
SIGNATURE_CHARS: Final = 300
SIGNATURE_ROWS: Final = 5
DOC_CHARS: Final = 600
# Identifiers longer than this are generated data, not names anybody looks up.
MAX_NAME_CHARS: Final = 200

_ROOTS: Final = frozenset({"module", "program", "source_file", "translation_unit"})
# Receivers named in every method; as references they would only add rows.
_SKIPPED_NAMES: Final = {"python": frozenset({"self", "cls"})}


def _row_text(lines: list[str], row: int) -> str:
    return lines[row].rstrip() if 0 <= row < len(lines) else ""


_COMMENT_STARTS: Final = ("#", "//", "/*", "*", "--")


def _signature(lines: list[str], first: int, last: int) -> str:
    last = max(first, min(last, first + SIGNATURE_ROWS - 1))
    rows = [_row_text(lines, row) for row in range(first, last + 1)]
    # A comment between the signature and the first statement is not part of it.
    while len(rows) > 1 and (
        not rows[-1].strip() or rows[-1].lstrip().startswith(_COMMENT_STARTS)
    ):
        rows.pop()
    return "\n".join(rows)[:SIGNATURE_CHARS]


def _python_docstring(node: Node) -> str:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type != "expression_statement" or not first.named_children:
        return ""
    string = first.named_children[0]
    if string.type != "string" or string.text is None:
        return ""
    return string.text.decode("utf-8", "replace").strip("\"' \n")


def _doc(definition: TreeDefinition, lines: list[str], language: str) -> str:
    if language == "python":
        docstring = _python_docstring(definition.node)
        if docstring:
            return docstring[:DOC_CHARS]
    rows = range(definition.attached_row, definition.node_row)
    comment = "\n".join(_row_text(lines, row).strip() for row in rows)
    return comment.strip()[:DOC_CHARS]


def _signature_last_row(definition: TreeDefinition, first: int) -> int:
    """Return the last row of the signature: the row before a body on its own rows."""
    body = definition.node.child_by_field_name("body")
    if body is None:
        return max(first, definition.signature_end)
    body_row = body.start_point[0]
    return body_row - 1 if body_row > first else body_row


def _definitions(
    found: list[TreeDefinition], lines: list[str], language: str
) -> list[Definition]:
    out = []
    for definition in found:
        first = definition.node.start_point[0]
        out.append(
            Definition(
                name=definition.name,
                qualified=definition.symbol,
                kind=definition.kind,
                parent=definition.parent.symbol if definition.parent else None,
                start_line=first + 1,
                end_line=definition.last_row + 1,
                signature=_signature(
                    lines, first, _signature_last_row(definition, first)
                ),
                doc=_doc(definition, lines, language),
            )
        )
    return out


def _statement(node: Node) -> Node:
    """Return the top-level statement holding a declaration's name."""
    current = node
    while current.parent is not None and current.parent.type not in _ROOTS:
        current = current.parent
    return current


def _declarations(
    *,
    captured: dict[str, list[Node]],
    lines: list[str],
    taken: set[tuple[int, str]],
) -> list[Definition]:
    out = []
    for kind, nodes in captured.items():
        # In source order: the order of a query's captures varies from one
        # parse to the next, and it decides which of two kinds a name takes.
        for node in sorted(nodes, key=lambda node: node.start_byte):
            name = _text(node)
            row = node.start_point[0]
            if not name or (row, name) in taken:
                continue
            taken.add((row, name))
            statement = _statement(node)
            out.append(
                Definition(
                    name=name,
                    qualified=name,
                    kind="constant" if kind == "variable" and name.isupper() else kind,
                    parent=None,
                    start_line=row + 1,
                    end_line=statement.end_point[0] + 1,
                    signature=_row_text(lines, row)[:SIGNATURE_CHARS],
                    doc="",
                )
            )
    return out


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text is not None else ""


def _field_child(parent: Node, fields: tuple[str, ...]) -> Node | None:
    """Return the first of ``fields`` that ``parent`` has, else its first named child.

    A grammar without the fields (Kotlin's and Swift's calls) puts the callee
    first.
    """
    for name in fields:
        child = parent.child_by_field_name(name)
        if child is not None:
            return child
    return parent.named_children[0] if parent.named_children else None


def _import_ranges(nodes: list[Node]) -> list[tuple[int, int]]:
    """Return the byte ranges whose names are imports, from import statements.

    A position belongs to the import statement starting last before it, and
    counts while inside that one (an import nested in another ends it).
    """
    spans = sorted((n.start_byte, n.end_byte) for n in nodes)
    ranges = []
    for index, (start, end) in enumerate(spans):
        following = spans[index + 1][0] if index + 1 < len(spans) else end
        if following == start:
            continue
        ranges.append((start, min(end, following)))
    return ranges


def _containers(found: list[TreeDefinition], row_count: int) -> list[str | None]:
    """Return, per row, the qualified name of the innermost definition there."""
    rows: list[str | None] = [None] * row_count
    spans = sorted(found, key=lambda d: d.node_row - d.last_row)
    for definition in spans:
        for row in range(
            definition.node_row, min(definition.last_row, row_count - 1) + 1
        ):
            rows[row] = definition.symbol
    return rows


def _letters(captured: dict[str, list[Node]], names: dict[int, Node]) -> dict[int, str]:
    """Return the kind letter of each name node that is not a plain name, by start.

    Calls win over members and members over types, as a method call is also
    a member and a member may be spelt with a type's node.
    """
    name, kind = KIND_LETTERS["type"], {}
    for node in captured.get("typeref", ()):
        kind[node.start_byte] = name
    for parent in captured.get("typed", ()):
        for child in parent.named_children:
            start = child.start_byte
            if names.get(start) == child:
                kind[start] = name
    name = KIND_LETTERS["attribute"]
    for parent in captured.get("member", ()):
        child = _field_child(parent, MEMBER_FIELDS)
        if child is not None and names.get(start := child.start_byte) == child:
            kind[start] = name
    name = KIND_LETTERS["call"]
    for parent in captured.get("call", ()):
        child = _field_child(parent, CALLEE_FIELDS)
        if child is None:
            continue
        if child.type in MEMBER_NODES:
            child = _field_child(child, MEMBER_FIELDS)
            if child is None:
                continue
        if names.get(start := child.start_byte) == child:
            kind[start] = name
    return kind


def _uses(
    *,
    captured: dict[str, list[Node]],
    source: bytes,
    language: str,
    lines: list[str],
    found: list[TreeDefinition],
    own_names: set[int],
) -> list[str]:
    """Return the uses of each name of a file, in file order, as reference rows.

    Every name node costs a few calls into the binding; what can be asked
    once per name, per parent node or per file is asked there instead.
    """
    # A name node is known by its start byte; the node itself is kept to
    # tell it from a parent starting at the same byte.
    names: dict[int, Node] = {}
    starts_by_text: dict[bytes, list[int]] = {}
    for nodes in (captured.get("ref", ()), captured.get("typeref", ())):
        for node in nodes:
            start = node.start_byte
            if start in own_names:
                continue
            names[start] = node
            text = source[start : node.end_byte]
            starts = starts_by_text.get(text)
            if starts is None:
                starts_by_text[text] = [start]
            else:
                starts.append(start)
    if not names:
        return []
    kind = _letters(captured, names)
    ordered = sorted(names)
    letter = KIND_LETTERS["import"]
    for start, end in _import_ranges(captured.get("import", [])):
        for position in ordered[
            bisect_left(ordered, start) : bisect_left(ordered, end)
        ]:
            kind[position] = letter
    # Byte offset of each row's start: rows as tree-sitter counts them.
    row_starts = list(
        accumulate((len(row) + 1 for row in source.split(b"\n")), initial=0)
    )
    containers = _containers(found, len(lines))
    rows_known = len(lines)
    skipped = _SKIPPED_NAMES.get(language, frozenset())
    ascii_file = source.isascii()
    plain = KIND_LETTERS["name"]
    by_name: dict[str, list[int]] = {}
    for text, starts in starts_by_text.items():
        name = text.decode("utf-8", "replace")
        if not name or len(name) > MAX_NAME_CHARS or name in skipped:
            continue
        if name in by_name:
            # Two spellings that decode alike (invalid UTF-8) are one name.
            by_name[name] = sorted(by_name[name] + starts)
        else:
            by_name[name] = starts if len(starts) == 1 else sorted(starts)
    out = []
    # By first use: the captures' order varies from one parse to the next.
    for name, starts in sorted(by_name.items(), key=lambda item: item[1][0]):
        rows = [bisect_right(row_starts, start) - 1 for start in starts]
        columns = [
            start - row_starts[row] + 1 for start, row in zip(starts, rows, strict=True)
        ]
        if not ascii_file:
            for index, row in enumerate(rows):
                line = lines[row] if row < rows_known else ""
                if not line.isascii():
                    before = line.encode()[: columns[index] - 1]
                    columns[index] = len(before.decode("utf-8", "ignore")) + 1
        out.append(
            reference_row(
                name,
                [row + 1 for row in rows],
                columns,
                "".join([kind.get(start, plain) for start in starts]),
                [containers[row] if row < rows_known else None for row in rows],
            )
        )
    return out


def file_symbols(
    *,
    captures: dict[str, list[Node]],
    source: bytes,
    language: str,
    lines: list[str],
    found: list[TreeDefinition],
) -> tuple[list[Definition], list[str]]:
    """Return a parsed file's definitions, in file order, and its reference rows.

    ``captures`` are those of the grammar's symbols query (LoadedGrammar).
    """
    definitions = _definitions(found, lines, language)
    taken = {(d.start_line - 1, d.name) for d in definitions}
    taken |= {(d.node_row, d.name) for d in found}
    declared = {kind: captures[kind] for kind in DECLARATION_KINDS if kind in captures}
    definitions.extend(_declarations(captured=declared, lines=lines, taken=taken))
    definitions.sort(key=lambda d: (d.start_line, d.end_line))
    own_names = {d.name_node.start_byte for d in found if d.name_node is not None}
    for nodes in declared.values():
        own_names.update(node.start_byte for node in nodes)
    uses = _uses(
        captured=captures,
        source=source,
        language=language,
        lines=lines,
        found=found,
        own_names=own_names,
    )
    return definitions, uses
