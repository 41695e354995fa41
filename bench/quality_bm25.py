"""BM25 baselines over fixed line windows, for bench/quality.py.

The plain baseline reads words as they are written (lower-cased, a few stop
words dropped; no stemming, no field weights, identifiers whole), as an
Elasticsearch index with its standard analyzer would: the baseline the issue
asks the search modes to beat, and the one CodeSearchNet reported. With
`split_identifiers`, compound identifiers also count by their parts
(`parse_header` -> parse, header), one of the things the project's own
keyword search does: a stronger reference, printed next to it.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from indexing.terms import identifier_split

_TOKEN = re.compile(r"[A-Za-z0-9_]+")
STOP_WORDS = frozenset(
    """
    a an and are as at be by for from has have how i in is it its of on or that
    the this to was what when where which who will with
    """.split()
)


def tokens(text: str, *, split_identifiers: bool = False) -> list[str]:
    """Return lower-case terms: each word, and with `split_identifiers` the
    parts of compound identifiers too."""
    out: list[str] = []
    for token in _TOKEN.findall(text):
        lowered = token.lower()
        if lowered not in STOP_WORDS:
            out.append(lowered)
        if split_identifiers:
            parts = identifier_split(identifier=token)
            if len(parts) > 1:
                out.extend(part for part in parts if part not in STOP_WORDS)
    return out


@dataclass(frozen=True)
class Window:
    """A run of lines of one file."""

    path: str
    start_line: int
    end_line: int


class Bm25Index:
    """Okapi BM25 over line windows of a set of files."""

    def __init__(
        self,
        *,
        files: dict[str, str],
        window_lines: int = 40,
        k1: float = 1.2,
        b: float = 0.75,
        split_identifiers: bool = False,
    ) -> None:
        self.split_identifiers = split_identifiers
        self.k1 = k1
        self.b = b
        self.windows: list[Window] = []
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for path in sorted(files):
            lines = files[path].splitlines()
            for start in range(0, len(lines), window_lines):
                chunk = lines[start : start + window_lines]
                counts = Counter(
                    tokens("\n".join(chunk), split_identifiers=split_identifiers)
                )
                if not counts:
                    continue
                document = len(self.windows)
                self.windows.append(Window(path, start + 1, start + len(chunk)))
                self.lengths.append(sum(counts.values()))
                for term, frequency in counts.items():
                    self.postings[term].append((document, frequency))
        self.average_length = sum(self.lengths) / max(1, len(self.lengths))

    def idf(self, term: str) -> float:
        """Return the (always positive) Lucene form of inverse document frequency."""
        count = len(self.windows)
        frequency = len(self.postings.get(term, ()))
        return math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))

    def search(self, *, query: str, limit: int = 10) -> list[Window]:
        """Return the best `limit` windows for a query, best first."""
        scores: dict[int, float] = defaultdict(float)
        for term in set(tokens(query, split_identifiers=self.split_identifiers)):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf(term)
            for document, frequency in postings:
                norm = (
                    1 - self.b + self.b * self.lengths[document] / self.average_length
                )
                scores[document] += (
                    idf * frequency * (self.k1 + 1) / (frequency + self.k1 * norm)
                )
        best = heapq.nlargest(
            limit, scores.items(), key=lambda item: (item[1], -item[0])
        )
        return [self.windows[document] for document, _ in best]
