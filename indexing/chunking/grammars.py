"""Per-language tables: how to find definitions in each tree-sitter grammar.

One entry per chunked language: the grammar's module, the query patterns
that capture definition nodes, which of them are functions, and which node
types contain members (classes, impls, namespaces) under what kind. Adding a
language means adding an entry here (and its wheel to pyproject.toml).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from typing import Final


@dataclass(frozen=True, slots=True)
class Grammar:
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
    # Module-level definitions the chunker leaves inside module chunks:
    # patterns capturing a name node as one of DECLARATION_KINDS.
    declarations: tuple[str, ...] = ()


DECLARATION_KINDS: Final = ("constant", "variable", "type", "module")


JS_FUNCTION_NODES: Final = (
    "arrow_function",
    "function_expression",
    "generator_function",
)
# Object literals holding functions ("const api = {get() {...}}", "X.prototype =
# {...}") act as containers, like classes written before ES2015.
_JS_VALUES: Final = (
    *(f"({node})" for node in JS_FUNCTION_NODES),
    *(f"(object (pair value: ({node})))" for node in JS_FUNCTION_NODES),
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
    *(f"(pair value: ({node})) @def" for node in JS_FUNCTION_NODES),
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
    *(f"(public_field_definition value: ({node})) @def" for node in JS_FUNCTION_NODES),
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


# Top-level bindings; those holding functions are definitions already and
# are told apart by their line when symbols are collected.
_JS_DECLARATIONS: Final = (
    "(program (lexical_declaration (variable_declarator name: (identifier) @variable)))",
    "(program (variable_declaration (variable_declarator name: (identifier) @variable)))",
    "(program (export_statement (lexical_declaration"
    " (variable_declarator name: (identifier) @variable))))",
    "(program (export_statement (variable_declaration"
    " (variable_declarator name: (identifier) @variable))))",
)

# Identifier nodes that are uses of a name, in every grammar that has them
# (each pattern is tried alone, so a type a grammar lacks drops only itself).
# Strings and comments hold none of them. A name node whose type says it is a
# type is captured apart: it is a type use wherever it is not a call or member.
REFERENCE_PATTERNS: Final = (
    "(identifier) @ref",
    "(type_identifier) @typeref",
    "(property_identifier) @ref",
    "(shorthand_property_identifier) @ref",
    "(field_identifier) @ref",
    "(simple_identifier) @ref",
    "(namespace_identifier) @ref",
    "(package_identifier) @ref",
    "(constant) @ref",
    "(name) @ref",
    "(variable_name) @ref",
    "(command_name (word) @ref)",
)
# Where a name node sits tells how it is used: the callee of a call, the
# member of a member access (a call when that access is a callee), any name
# right under a type node. These nodes are captured with the names (@call,
# @member, @typed) so the classification reads no node's parent.
CALL_NODES: Final = frozenset(
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
MEMBER_NODES: Final = frozenset(
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
# The first of these fields a node has is its callee or member; a grammar
# without them (Kotlin's and Swift's calls) puts it first among the children.
CALLEE_FIELDS: Final = ("function", "name", "method", "constructor", "macro")
MEMBER_FIELDS: Final = ("attribute", "property", "field", "name")
# Nodes whose named children are type uses: these, and every node type of a
# grammar whose name ends in "_type".
TYPE_PARENT_NODES: Final = frozenset(
    {"type", "type_annotation", "type_arguments", "type_argument_list", "type_list"}
)


def structure_patterns(node_types: set[str]) -> tuple[str, ...]:
    """Return the @call, @member and @typed patterns for a grammar's node types.

    Only concrete node types: a pattern naming a supertype (C#'s `type`)
    would match each of its subtypes.
    """
    typed = TYPE_PARENT_NODES | {n for n in node_types if n.endswith("_type")}
    return (
        *(f"({node}) @call" for node in sorted(CALL_NODES & node_types)),
        *(f"({node}) @member" for node in sorted(MEMBER_NODES & node_types)),
        *(f"({node}) @typed" for node in sorted(typed & node_types)),
    )


# Statements whose identifiers are imports, in every grammar that has them.
IMPORT_PATTERNS: Final = (
    "(import_statement) @import",
    "(import_from_statement) @import",
    "(future_import_statement) @import",
    "(import_declaration) @import",
    "(import_spec) @import",
    "(import_header) @import",
    "(import) @import",
    "(use_declaration) @import",
    "(using_directive) @import",
    "(namespace_use_declaration) @import",
    "(preproc_include) @import",
)


def _simple(*node_types: str) -> tuple[str, ...]:
    """Return one capture pattern per node type."""
    return tuple(f"({node_type}) @def" for node_type in node_types)


GRAMMARS: Final[dict[str, Grammar]] = {
    "python": Grammar(
        module="tree_sitter_python",
        factory="language",
        patterns=_simple("function_definition", "class_definition"),
        functions=frozenset({"function_definition"}),
        containers={"class_definition": "class"},
        wrappers=frozenset({"decorated_definition"}),
        declarations=(
            "(module (expression_statement (assignment left: (identifier) @variable)))",
            "(module (expression_statement (assignment left: (pattern_list (identifier) @variable))))",
        ),
    ),
    "javascript": Grammar(
        module="tree_sitter_javascript",
        factory="language",
        patterns=(
            *_JS_COMMON_PATTERNS,
            *(f"(field_definition value: ({node})) @def" for node in JS_FUNCTION_NODES),
        ),
        functions=_JS_FUNCTIONS,
        containers={"class_declaration": "class"},
        wrappers=frozenset({"export_statement"}),
        declarations=_JS_DECLARATIONS,
    ),
    "typescript": Grammar(
        module="tree_sitter_typescript",
        factory="language_typescript",
        patterns=_TS_PATTERNS,
        functions=_JS_FUNCTIONS,
        containers=_TS_CONTAINERS,
        wrappers=frozenset({"export_statement", "ambient_declaration"}),
        declarations=_JS_DECLARATIONS,
    ),
    "tsx": Grammar(
        module="tree_sitter_typescript",
        factory="language_tsx",
        patterns=_TS_PATTERNS,
        functions=_JS_FUNCTIONS,
        containers=_TS_CONTAINERS,
        wrappers=frozenset({"export_statement", "ambient_declaration"}),
        declarations=_JS_DECLARATIONS,
    ),
    "go": Grammar(
        module="tree_sitter_go",
        factory="language",
        patterns=_simple(
            "function_declaration", "method_declaration", "type_spec", "type_alias"
        ),
        functions=frozenset({"function_declaration", "method_declaration"}),
        containers={"type_spec": "type", "type_alias": "type"},
        declarations=(
            "(source_file (const_declaration (const_spec name: (identifier) @constant)))",
            "(source_file (var_declaration (var_spec name: (identifier) @variable)))",
        ),
    ),
    "rust": Grammar(
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
        declarations=(
            "(const_item name: (identifier) @constant)",
            "(static_item name: (identifier) @constant)",
            "(type_item name: (type_identifier) @type)",
            "(mod_item name: (identifier) @module)",
        ),
    ),
    "java": Grammar(
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
    "c": Grammar(
        module="tree_sitter_c",
        factory="language",
        patterns=_C_PATTERNS,
        functions=frozenset({"function_definition"}),
        containers=_C_CONTAINERS,
        wrappers=frozenset({"type_definition"}),
    ),
    "cpp": Grammar(
        module="tree_sitter_cpp",
        factory="language",
        patterns=(*_C_PATTERNS, "(class_specifier body: (_)) @def"),
        functions=frozenset({"function_definition"}),
        containers={**_C_CONTAINERS, "class_specifier": "class"},
        wrappers=frozenset({"type_definition", "template_declaration"}),
    ),
    "csharp": Grammar(
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
    "ruby": Grammar(
        module="tree_sitter_ruby",
        factory="language",
        patterns=_simple("method", "singleton_method", "class", "module"),
        functions=frozenset({"method", "singleton_method"}),
        containers={"class": "class", "module": "module"},
    ),
    "php": Grammar(
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
    "kotlin": Grammar(
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
    "swift": Grammar(
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
    "scala": Grammar(
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
    "bash": Grammar(
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
        for name, grammar in GRAMMARS.items()
        if importlib.util.find_spec(grammar.module) is not None
    )
