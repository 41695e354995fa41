"""Split identifiers into words so full-text search matches their parts."""

import re
from functools import lru_cache

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
# parseHTTPHeader -> parse HTTP Header; snake_case -> snake case; v2Api -> v2 Api
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def identifier_split(*, identifier: str) -> list[str]:
    """Return the lower-case words of one identifier (`parseHTTPHeader` -> parse http header)."""
    return list(_split(identifier))


# Code repeats its identifiers endlessly; splitting each once is most of the win.
@lru_cache(maxsize=65536)
def _split(identifier: str) -> tuple[str, ...]:
    words: list[str] = []
    for part in identifier.split("_"):
        if part:
            words.extend(_CAMEL_BOUNDARY.sub(" ", part).lower().split())
    return tuple(words)


def identifier_terms(*, text: str, limit: int = 2000) -> str:
    """Return the split words of every compound identifier in `text`, de-duplicated.

    Only identifiers that actually split add terms; their whole form is already
    in the text itself.
    """
    seen: dict[str, None] = {}
    # In order of first use, not a set's: a set's order changes with each
    # process's string hashes, and the stored text (and which words make the
    # limit) must not depend on which process parsed the file.
    for identifier in dict.fromkeys(_IDENTIFIER.findall(text)):
        words = _split(identifier)
        if len(words) > 1:
            for word in words:
                seen.setdefault(word, None)
                if len(seen) >= limit:
                    return " ".join(seen)
    return " ".join(seen)


def header_terms(*, relative_path: str, symbol: str | None) -> str:
    """Return the weighted header text of a chunk: its symbol and path, split too."""
    pieces = [relative_path.replace("/", " ").replace(".", " ")]
    if symbol:
        pieces.append(symbol.replace(".", " "))
    text = " ".join(pieces)
    return f"{text} {identifier_terms(text=text)}".strip()


_NAME_PART = re.compile(r"[A-Za-z0-9_]+")


def symbol_words(*, symbol: str | None) -> str:
    """Return a chunk symbol as plain words (`Request.get_json` -> request get json)."""
    words: list[str] = []
    for part in _NAME_PART.findall(symbol or ""):
        words.extend(_split(part))
    return " ".join(words)
