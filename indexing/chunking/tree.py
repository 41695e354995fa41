"""Cut a parsed file at its definitions; the code between them makes module chunks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from tree_sitter import Node

from indexing.chunking.chunk import Chunk
from indexing.chunking.grammars import JS_FUNCTION_NODES, Grammar
from indexing.chunking.windows import lines_emit

# A context header must not eat the budget of the code it introduces.
HEADER_SHARE: Final = 4
HEADER_CAP: Final = 200
# Class chunks list member signatures; very long signatures are cut here.
SIGNATURE_LINES: Final = 5
# Definitions sharing a line with a sibling, beyond which code counts as
# minified (also at least a tenth of all definitions).
CROWDED_MIN: Final = 3

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
_JS_FUNCTION_TYPES: Final = frozenset(JS_FUNCTION_NODES)
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
    return _WHITESPACE.sub(" ", raw).strip()[:HEADER_CAP]


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
class TreeDefinition:
    """Hold one definition and its rows (0-based, inclusive)."""

    kind: str
    symbol: str
    name: str
    node: Node
    name_node: Node | None
    # The first row of its attached comments before siblings claimed rows.
    attached_row: int
    is_container: bool
    # first_row includes attached comments/attributes, node_row does not.
    first_row: int
    node_row: int
    last_row: int
    header_row: int
    signature_end: int
    parent: TreeDefinition | None
    children: list[TreeDefinition] = field(default_factory=list)


class TreeChunker:
    """Turn one parsed file into chunks, keeping the per-file state."""

    def __init__(
        self,
        *,
        language: str,
        grammar: Grammar,
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
        # Every definition found, kept or crowded out, for the symbol table.
        self.found: list[TreeDefinition] = []

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
        end = min(end, node_row + SIGNATURE_LINES - 1, last_row)
        return max(end, node_row)

    def _make_def(
        self, node: Node, parent: TreeDefinition | None
    ) -> TreeDefinition | None:
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
        first_row = self._attached_start(outer)
        return TreeDefinition(
            kind=kind,
            symbol=symbol,
            name=symbol.rsplit(".", 1)[-1],
            node=node,
            name_node=name_node,
            attached_row=first_row,
            is_container=not is_function,
            first_row=first_row,
            node_row=node_row,
            last_row=last_row,
            header_row=header_row,
            signature_end=self._signature_end(body, node_row, last_row),
            parent=parent,
        )

    def _definitions(self, nodes: list[Node]) -> list[TreeDefinition]:
        """Nest captured nodes into a definition tree and return its roots."""
        unique: dict[int, Node] = {node.id: node for node in nodes}
        ordered = sorted(unique.values(), key=lambda n: (n.start_byte, -n.end_byte))
        roots: list[TreeDefinition] = []
        # (end_byte, definition) of enclosing nodes; None marks a function
        # scope whose nested definitions stay inside the function's chunk.
        stack: list[tuple[int, TreeDefinition | None]] = []
        for node in ordered:
            while stack and stack[-1][0] <= node.start_byte:
                stack.pop()
            parent: TreeDefinition | None = None
            if stack:
                enclosing = stack[-1][1]
                if enclosing is None or not enclosing.is_container:
                    continue
                parent = enclosing
            definition = self._make_def(node, parent)
            if definition is None:
                continue
            self.found.append(definition)
            stack.append(
                (node.end_byte, definition if definition.is_container else None)
            )
            (parent.children if parent is not None else roots).append(definition)
        self._separate(roots)
        return roots

    def _separate(self, roots: list[TreeDefinition]) -> None:
        """Make sibling definitions claim disjoint rows, dropping the losers."""
        pending: list[list[TreeDefinition]] = [roots]
        while pending:
            siblings = pending.pop()
            siblings.sort(key=lambda d: (d.node_row, d.first_row))
            kept: list[TreeDefinition] = []
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

    def _header(self, definition: TreeDefinition) -> str | None:
        """Return the enclosing container's header line for context."""
        parent = definition.parent
        if parent is None:
            return None
        row = parent.header_row
        if definition.first_row <= row <= definition.last_row:
            return None
        line = self.lines[row].rstrip()
        cap = max(min(HEADER_CAP, self.budget // HEADER_SHARE), 1)
        return line[:cap] if line.strip() else None

    def _container_rows(self, definition: TreeDefinition) -> list[int]:
        """Return the container's own rows plus its members' signatures."""
        rows: list[int] = []
        cursor = definition.first_row
        for member in definition.children:
            rows.extend(range(cursor, member.first_row))
            rows.extend(range(max(member.node_row, cursor), member.signature_end + 1))
            cursor = max(cursor, member.last_row + 1)
        rows.extend(range(cursor, definition.last_row + 1))
        return rows

    def _emit_definitions(self, roots: list[TreeDefinition], out: list[Chunk]) -> None:
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
            lines_emit(
                out,
                [(row, lines[row]) for row in rows],
                kind=definition.kind,
                symbol=definition.symbol,
                budget=self.budget,
                overlap=self.overlap_lines,
                header=self._header(definition),
                span=(definition.first_row, definition.last_row),
            )

    def _emit_module(self, roots: list[TreeDefinition], out: list[Chunk]) -> None:
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
            lines_emit(
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
        if self.crowded >= CROWDED_MIN and self.crowded * 10 >= len(captured):
            # Many definitions per line means minified or generated code,
            # where line-based definition chunks would mislabel whole lines.
            return None
        out: list[Chunk] = []
        self._emit_definitions(definitions, out)
        self._emit_module(definitions, out)
        return out
