"""Read a parsed file's definitions and the uses of names, for navigation.

Definitions come from the same definition tree the chunker cuts along, plus
module-level declarations (constants, variables, type aliases, modules) the
grammar tables name. References are the identifier nodes of the tree that are
not a definition's own name; strings and comments hold no identifier nodes,
so they never count. Resolution is by name, as in tree-sitter's tags: a call
of `save` refers to every definition named `save`.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from tree_sitter import Node, Query, QueryCursor

from indexing.chunking.chunk import Definition, Reference
from indexing.chunking.parsers import LoadedGrammar
from indexing.chunking.tree import TreeDefinition

# Longest signature and doc text kept per symbol; an outline needs the head.
SIGNATURE_CHARS: Final = 300
SIGNATURE_ROWS: Final = 5
DOC_CHARS: Final = 600
# Identifiers longer than this are generated data, not names anybody looks up.
MAX_NAME_CHARS: Final = 200

_ROOTS: Final = frozenset({"module", "program", "source_file", "translation_unit"})
_CALLS: Final = frozenset(
    {
        "call",
        "call_expression",
        "method_invocation",
        "invocation_expression",
        "function_call_expression",
        "member_call_expression",
        "scoped_call_expression",
        "macro_invocation",
        "new_expression",
        "object_creation_expression",
        "command",
    }
)
_MEMBERS: Final = frozenset(
    {
        "attribute",
        "member_expression",
        "field_expression",
        "selector_expression",
        "navigation_expression",
        "navigation_suffix",
        "member_access_expression",
        "field_access",
        "scoped_identifier",
        "qualified_identifier",
        "scoped_type_identifier",
    }
)
_MEMBER_FIELDS: Final = ("attribute", "property", "field", "name")
_CALLEE_FIELDS: Final = ("function", "name", "method", "constructor", "macro")
_TYPE_PARENTS: Final = frozenset(
    {"type", "type_annotation", "type_arguments", "type_argument_list", "type_list"}
)
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
    *, root: Node, loaded: LoadedGrammar, lines: list[str], taken: set[tuple[int, str]]
) -> list[Definition]:
    if loaded.declarations is None:
        return []
    out = []
    for kind, nodes in QueryCursor(loaded.declarations).captures(root).items():
        for node in nodes:
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


def _field_is(parent: Node, node: Node, fields: tuple[str, ...]) -> bool:
    """Tell whether ``node`` is the first of ``fields`` that ``parent`` has.

    A grammar without the field (Kotlin's and Swift's calls) puts the callee
    first: then the first named child decides.
    """
    for name in fields:
        child = parent.child_by_field_name(name)
        if child is not None:
            return child == node
    first = parent.named_children[0] if parent.named_children else None
    return first is not None and first == node


class _Spans:
    """Byte ranges of a file's import statements, to test positions against."""

    def __init__(self, root: Node, query: Query | None) -> None:
        nodes = QueryCursor(query).captures(root).get("import", []) if query else []
        spans = sorted((n.start_byte, n.end_byte) for n in nodes)
        self.starts = [start for start, _ in spans]
        self.ends = [end for _, end in spans]

    def holds(self, position: int) -> bool:
        index = bisect_right(self.starts, position) - 1
        return index >= 0 and position < self.ends[index]


def reference_kind(node: Node) -> str:
    """Classify an identifier's use outside imports: call, attribute, type or name."""
    parent = node.parent
    if parent is None:
        return "name"
    if parent.type in _CALLS and _field_is(parent, node, _CALLEE_FIELDS):
        return "call"
    if parent.type in _MEMBERS and _field_is(parent, node, _MEMBER_FIELDS):
        grand = parent.parent
        if (
            grand is not None
            and grand.type in _CALLS
            and _field_is(grand, parent, _CALLEE_FIELDS)
        ):
            return "call"
        return "attribute"
    if (
        "type" in node.type
        or parent.type in _TYPE_PARENTS
        or parent.type.endswith("_type")
    ):
        return "type"
    return "name"


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


def _references(
    *,
    root: Node,
    language: str,
    loaded: LoadedGrammar,
    lines: list[str],
    found: list[TreeDefinition],
    own_names: set[int],
) -> list[Reference]:
    if loaded.references is None:
        return []
    containers = _containers(found, len(lines))
    skipped = _SKIPPED_NAMES.get(language, frozenset())
    imports = _Spans(root, loaded.imports)
    out = []
    append = out.append
    rows = len(lines)
    structural = _CALLS | _MEMBERS
    for node in QueryCursor(loaded.references).captures(root).get("ref", []):
        start = node.start_byte
        if start in own_names:
            continue
        name = node.text.decode("utf-8", "replace")
        if not name or len(name) > MAX_NAME_CHARS or name in skipped:
            continue
        row, byte_column = node.start_point
        line = lines[row] if row < rows else ""
        if not line.isascii():
            byte_column = len(line.encode()[:byte_column].decode("utf-8", "ignore"))
        if imports.holds(start):
            kind = "import"
        else:
            # Most identifiers sit in no call, member or type position: tell
            # them apart by the parent's type before asking for fields.
            parent = node.parent
            parent_type = parent.type if parent is not None else ""
            if parent_type in structural:
                kind = reference_kind(node)
            elif (
                parent_type in _TYPE_PARENTS
                or parent_type.endswith("_type")
                or "type" in node.type
            ):
                kind = "type"
            else:
                kind = "name"
        append(
            Reference(
                name,
                row + 1,
                byte_column + 1,
                kind,
                containers[row] if row < rows else None,
            )
        )
    return out


def file_symbols(
    *,
    root: Node,
    loaded: LoadedGrammar,
    language: str,
    lines: list[str],
    found: list[TreeDefinition],
) -> tuple[list[Definition], list[Reference]]:
    """Return a parsed file's definitions and references, in file order."""
    definitions = _definitions(found, lines, language)
    taken = {(d.start_line - 1, d.name) for d in definitions}
    taken |= {(d.node_row, d.name) for d in found}
    declared = _declarations(root=root, loaded=loaded, lines=lines, taken=taken)
    definitions.extend(declared)
    definitions.sort(key=lambda d: (d.start_line, d.end_line))
    own_names = {d.name_node.start_byte for d in found if d.name_node is not None}
    if loaded.declarations is not None:
        for nodes in QueryCursor(loaded.declarations).captures(root).values():
            own_names.update(node.start_byte for node in nodes)
    references = _references(
        root=root,
        language=language,
        loaded=loaded,
        lines=lines,
        found=found,
        own_names=own_names,
    )
    references.sort(key=lambda r: (r.line, r.column))
    return definitions, references
