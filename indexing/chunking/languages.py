"""Which language a file is written in, from its name.

Data only: file extensions and whole file names to language names, the
aliases callers may use, and the files never worth chunking.
"""

from __future__ import annotations

import os
from typing import Final

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
LANGUAGE_ALIASES: Final[dict[str, str]] = {
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
