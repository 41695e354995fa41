"""Pack lines into bounded chunks: line windows, and the parts of a cut definition."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from indexing.chunking.chunk import Chunk

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


def lines_emit(
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


def lines_split(text: str) -> list[str]:
    """Split on LF only, as tree-sitter counts rows, dropping a CR before it."""
    lines = text.split("\n")
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def window_chunks(
    lines: Sequence[str], budget: int, window_lines: int, overlap_lines: int
) -> list[Chunk]:
    """Cut the whole file into overlapping line windows."""
    out: list[Chunk] = []
    lines_emit(
        out,
        list(enumerate(lines)),
        kind="window",
        symbol=None,
        budget=budget,
        max_lines=window_lines,
        overlap=overlap_lines,
    )
    return out
