"""Shape a search's rows into results: context lines, staleness, merging, budget."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SearchResult:
    """One hit: where it is, what it is, and its code with some context."""

    file_path: str
    repository: str
    repository_id: str
    start_line: int
    end_line: int
    language: str
    symbol: str | None
    kind: str
    score: float
    content: str
    context_before: str = ""
    context_after: str = ""
    stale: bool = False
    # The class (or other container) of a method; `symbol` is qualified.
    container: str | None = None
    # The project a hit comes from, in a search over several projects.
    project: str | None = None
    # The chunk whose rank the hit holds, in its project database (a method
    # folded into its better-ranked class holds the class's): a search over
    # several projects looks its vector up by it.
    ranked_chunk_id: int | None = None


class FileCache:
    """Read each result file once per search: its lines and whether it changed."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}
        self._stale: dict[str, bool] = {}

    def stale(self, path: str, sha256: str, size: int, mtime: float) -> bool:
        if path not in self._stale:
            self._stale[path] = self._check(path, sha256, size, mtime)
        return self._stale[path]

    def _check(self, path: str, sha256: str, size: int, mtime: float) -> bool:
        try:
            stat = os.stat(path)
        except OSError:
            return True
        if stat.st_size == size and stat.st_mtime == mtime:
            return False
        try:
            with open(path, "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest() != sha256
        except OSError:
            return True

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            try:
                self._lines[path] = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                self._lines[path] = None
        return self._lines[path]


def results_shape(
    *, rows: list[tuple], context_lines: int = 0, files: FileCache | None = None
) -> list[SearchResult]:
    """Return a result per row (columns past the 14th, ranking signals, unread).

    Context lines are read here only when asked; chunk_search adds them
    (results_add_context) once the hits it keeps are known.
    """
    files = files or FileCache()
    results = []
    for (
        _id,
        relative_path,
        repo_path,
        repo_id,
        start,
        end,
        language,
        symbol,
        kind,
        score,
        content,
        sha256,
        size,
        mtime,
    ) in (row[:14] for row in rows):
        absolute = os.path.join(repo_path, relative_path)
        results.append(
            SearchResult(
                file_path=relative_path,
                repository=repo_path,
                repository_id=str(repo_id),
                start_line=start,
                end_line=end,
                language=language,
                symbol=symbol,
                kind=kind,
                score=round(float(score), 6),
                content=content,
                stale=files.stale(absolute, sha256, size, mtime),
                container=(
                    symbol.rsplit(".", 1)[0]
                    if kind == "method" and symbol and "." in symbol
                    else None
                ),
                ranked_chunk_id=_id,
            )
        )
    if context_lines:
        results_add_context(results, context_lines, files=files)
    return results


def results_add_context(
    results: list[SearchResult], context_lines: int, *, files: FileCache | None = None
) -> None:
    """Fill each fresh result's context_before/after from its file on disk.

    Run on the hits a search keeps, after overlapping hits are merged: a
    search ranks three times as many rows as it shows, and a search over
    several projects keeps `limit` hits of them all, so reading files for
    the others is time (and, in threads, the GIL) spent on nothing.
    """
    if not context_lines:
        return
    files = files or FileCache()
    for result in results:
        if result.stale:
            continue
        lines = files.lines(os.path.join(result.repository, result.file_path))
        if lines is None:
            continue
        start, end = result.start_line, result.end_line
        result.context_before = "\n".join(
            lines[max(0, start - 1 - context_lines) : start - 1]
        )
        result.context_after = "\n".join(lines[end : end + context_lines])


# Chunks of these kinds hold a header and member signatures but span the whole
# body; a member found inside one is the more useful answer.
CONTAINER_KINDS = frozenset(
    {"class", "interface", "struct", "trait", "impl", "object", "enum", "type"}
)


def results_merge_overlapping(results: list[SearchResult]) -> list[SearchResult]:
    """Fold hits that overlap a better hit of the same file into it.

    A member (method, function) nested in a better-ranked container chunk
    takes the container's place and rank: the answer is the function, not the
    whole class around it.
    """
    kept: list[SearchResult] = []
    for result in results:
        for index, better in enumerate(kept):
            if (
                better.repository_id != result.repository_id
                or better.file_path != result.file_path
                or result.start_line > better.end_line
                or better.start_line > result.end_line
            ):
                continue
            nested = (
                better.start_line
                <= result.start_line
                <= result.end_line
                <= (better.end_line)
            )
            if (
                nested
                and better.kind in CONTAINER_KINDS
                and result.kind not in CONTAINER_KINDS
            ):
                result.score = better.score
                result.ranked_chunk_id = better.ranked_chunk_id
                kept[index] = result
            elif (
                result.kind not in CONTAINER_KINDS
                and better.kind not in CONTAINER_KINDS
                and (
                    result.start_line < better.start_line
                    or result.end_line > better.end_line
                )
            ):
                # Only pieces of one split function or overlapping windows are
                # widened; a class around a better hit is dropped, not merged.
                better.content = _union_content(better, result)
                better.start_line = min(better.start_line, result.start_line)
                better.end_line = max(better.end_line, result.end_line)
            break
        else:
            kept.append(result)
    return kept


def _union_content(first: SearchResult, second: SearchResult) -> str:
    start = min(first.start_line, second.start_line)
    end = max(first.end_line, second.end_line)
    if not first.stale:
        try:
            lines = Path(first.repository, first.file_path).read_text(errors="replace")
            return "\n".join(lines.splitlines()[start - 1 : end])
        except OSError:
            pass
    ordered = sorted((first, second), key=lambda r: r.start_line)
    return "\n".join(r.content for r in ordered)


def _estimate_tokens(result: SearchResult) -> int:
    text_chars = (
        len(result.content)
        + len(result.context_before)
        + len(result.context_after)
        + len(result.file_path)
        + len(result.repository)
        + 120
    )
    return text_chars // 4 + 1


def results_fit_budget(
    results: list[SearchResult], max_tokens: int
) -> tuple[list[SearchResult], bool]:
    """Keep results while they fit the token budget; trim the first if it alone does not."""
    kept: list[SearchResult] = []
    used = 0
    for result in results:
        cost = _estimate_tokens(result)
        if used + cost > max_tokens:
            if not kept:
                result.context_before = result.context_after = ""
                room = max(0, (max_tokens - 40) * 4)
                result.content = result.content[:room]
                kept.append(result)
            return kept, True
        kept.append(result)
        used += cost
    return kept, False
