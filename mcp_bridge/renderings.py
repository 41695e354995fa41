"""The text an assistant reads: each tool's answer, compact.

The structured content of a tool call carries the full typed data for
programs; the text content is what a model reads, so it says everything
once: one header line per hit (`path:start-end  symbol`), code in a fenced
block tagged with its language, the repository named once when every hit
shares it, notes last. Token counts are estimated as characters / 4
(bench/answer_size.py measures both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import BaseModel

from indexing.selectors import embedding_progress_text

CHARS_PER_TOKEN = 4


def tokens_estimate(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def fence(language: str, text: str) -> str:
    # A fence longer than any backtick run inside, so code holding ``` stays whole.
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


def _shared(values: Iterable[str]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _where(repository: str, path: str, shared: str | None) -> str:
    return path if shared else f"{repository}/{path}"


def _project(item) -> str:
    """Label a hit of a call over several projects with its project."""
    project = getattr(item, "project", None)
    return f"[{project}] " if isinstance(project, str) and project else ""


def _over(result) -> str:
    projects = getattr(result, "projects", None)
    if not projects:
        return ""
    answered = sum(1 for p in projects if p.status == "ok")
    return f" over {answered} of {len(projects)} projects"


def _notes(notes: list[str]) -> list[str]:
    return [f"note: {note}" for note in notes]


def _stale(stale: bool) -> str:
    return "  [STALE: changed on disk since indexing]" if stale else ""


# --- search_code --------------------------------------------------------------


def search_render(result, *, output: str = "full") -> str:
    hits = result.results
    shared = _shared(hit.repository for hit in hits)
    head = (
        f"{len(hits)} of {result.total_count} results{_over(result)} ({result.mode}, "
        f"{result.embedded_fraction:.0%} embedded)"
    )
    if shared:
        head += f" in {shared}"
    lines = [head]
    for rank, hit in enumerate(hits, start=1):
        where = _project(hit) + _where(hit.repository, hit.file_path, shared)
        symbol = f"  {hit.symbol}" if hit.symbol else ""
        if output == "locations":
            lines.append(f"{where}:{hit.start_line}{symbol}{_stale(hit.stale)}")
            continue
        # A named hit's code shows what it is; a module chunk or a window
        # has no name, so its kind says what the lines are.
        what = symbol or f"  {hit.kind}"
        lines.append(
            f"{rank}. {where}:{hit.start_line}-{hit.end_line}{what}  "
            f"({hit.score:.3f}){_stale(hit.stale)}"
        )
        if output == "signatures":
            first = next((ln for ln in hit.content.splitlines() if ln.strip()), "")
            lines.append(f"   {first.strip()}")
            continue
        before = hit.context_before.splitlines() if hit.context_before else []
        body = "\n".join(
            part
            for part in (hit.context_before, hit.content, hit.context_after)
            if part
        )
        if before:
            lines.append(f"   (from line {hit.start_line - len(before)}, with context)")
        lines.append(fence(hit.language, body))
        if hit.lines_cut:
            lines.append(
                f"   ({hit.lines_cut} more lines to line {hit.end_line}: raise "
                "snippet_lines, or read the file's resource with its line range)"
            )
    if result.truncated:
        lines.append("(list cut to fit max_tokens; raise it or lower limit)")
    return "\n".join(lines + _notes(result.notes))


# --- find_symbol ---------------------------------------------------------------


def symbols_render(result, *, output: str = "full") -> str:
    found = result.symbols
    shared = _shared(hit.repository for hit in found)
    head = (
        f"{len(found)} of {result.total} definitions of `{result.query}`"
        f"{_over(result)} ({result.match})"
    )
    if shared:
        head += f" in {shared}"
    lines = [head]
    for rank, hit in enumerate(found, start=1):
        where = _project(hit) + _where(hit.repository, hit.file_path, shared)
        if output == "locations":
            lines.append(f"{where}:{hit.start_line}  {hit.qualified_name}")
            continue
        matched = "" if hit.match == "name" else f"  [{hit.match} match]"
        lines.append(
            f"{rank}. {where}:{hit.start_line}-{hit.end_line}  {hit.qualified_name}  "
            f"{hit.kind}{matched}{_stale(hit.stale)}"
        )
        if output == "signatures" or not hit.body:
            if hit.signature:
                lines.append(f"   {' '.join(hit.signature.split())}")
            if hit.doc and output != "signatures":
                lines.append(f"   doc: {hit.doc}")
            continue
        if hit.doc and hit.doc not in hit.body:
            lines.append(f"   doc: {hit.doc}")
        lines.append(fence(hit.language, hit.body))
        if hit.body_lines_cut:
            lines.append(
                f"   ({hit.body_lines_cut} more lines to line {hit.end_line}: raise "
                "body_lines, or read the file's resource with its line range)"
            )
    if result.suggestions:
        lines.append(
            "did you mean: "
            + ", ".join(f"`{s.name}` ({s.definitions})" for s in result.suggestions)
        )
    return "\n".join(lines + _notes(result.notes))


# --- find_references -------------------------------------------------------------


def references_render(result, *, output: str = "full") -> str:
    shared = _shared(
        [f.repository for f in result.files]
        + [d.repository for d in result.definitions]
    )
    shown = sum(len(f.references) for f in result.files)
    head = (
        f"{shown} of {result.total_references} uses of `{result.name}` in "
        f"{len(result.files)} of {result.total_files} files"
    )
    if shared:
        head += f" in {shared}"
    lines = [head]
    if result.definitions:
        lines.append(f"defined ({len(result.definitions)}):")
        lines.extend(
            f"  {_where(d.repository, d.file_path, shared)}:{d.start_line}-"
            f"{d.end_line}  {d.qualified_name}  {d.kind}"
            for d in result.definitions
        )
    for group in result.files:
        where = _where(group.repository, group.file_path, shared)
        if output == "locations":
            lines.extend(
                f"{where}:{use.line}  {use.container or ''}".rstrip()
                for use in group.references
            )
            continue
        more = (
            f", {group.total - len(group.references)} not shown"
            if group.total > len(group.references)
            else ""
        )
        lines.append(f"{where} ({group.total} uses{more}){_stale(group.stale)}")
        for use in group.references:
            around = f" in {use.container}" if use.container else ""
            lines.append(f"  {use.line}:{use.column} {use.kind}{around}: {use.text}")
    if result.truncated:
        lines.append("(list cut: raise limit or per_file, or narrow with path_glob)")
    return "\n".join(lines + _notes(result.notes))


# --- file_outline ------------------------------------------------------------------


# Words that already tell a definition's kind in its signature line.
_SAYS_KIND = frozenset(
    "def class fn func function struct interface enum trait impl type typealias "
    "module mod namespace object record const static let var val async fun "
    "protocol extension union".split()
)


def outline_render(result) -> str:
    size = f", {result.lines} lines" if result.lines is not None else ""
    lines = [
        f"{result.file_path} ({result.language}{size}, {result.total} definitions) "
        f"in {result.repository}{_stale(result.stale)}"
    ]

    def walk(nodes, depth: int) -> None:
        for node in nodes:
            signature = " ".join(node.signature.split())
            words = signature.replace("(", " ").split()
            if not signature:
                signature = f"{node.kind} {node.name}"
            elif not _SAYS_KIND.intersection(words[:3]):
                # `MAX = 10` says nothing of being a constant; `def f()` does.
                signature = f"{node.kind} {signature}"
            span = (
                str(node.start_line)
                if node.start_line == node.end_line
                else f"{node.start_line}-{node.end_line}"
            )
            lines.append(f"{'  ' * depth}{span}  {signature}")
            walk(node.children, depth + 1)

    walk(result.symbols, 0)
    return "\n".join(lines + _notes(result.notes))


# --- grep_code -----------------------------------------------------------------------


def grep_render(result, *, output: str = "full") -> str:
    shared = _shared(f.repository for f in result.files)
    more = "" if result.totals_exact else "at least "
    how = "regex" if result.regex else "literal"
    flags = [how]
    if not result.case_sensitive:
        flags.append("any case")
    if result.whole_word:
        flags.append("whole words")
    if not result.indexed:
        flags.append("unindexed")
    head = (
        f"{result.matches_shown} of {more}{result.matches} lines in {more}"
        f"{result.files_matched} files{_over(result)} match `{result.pattern}` "
        f"({', '.join(flags)})"
    )
    if shared:
        head += f" in {shared}"
    lines = [head]
    for group in result.files:
        where = _project(group) + _where(group.repository, group.file_path, shared)
        if output == "locations":
            lines.extend(
                f"{where}:{m.line}  {m.symbol or ''}".rstrip() for m in group.matches
            )
            continue
        cut = (
            f", {group.total - len(group.matches)} not shown"
            if group.total > len(group.matches)
            else ""
        )
        lines.append(f"{where} ({group.total} lines{cut}){_stale(group.stale)}")
        lines.extend(_grep_lines(group.matches))
    if result.truncated:
        lines.append(
            "(list cut: raise max_matches / max_per_file, or narrow with directory "
            "or path_glob)"
        )
    return "\n".join(lines + _notes(result.notes))


def _grep_lines(matches) -> list[str]:
    """Lines as ripgrep prints them: `N:` a match, `N-` context, `--` a gap."""
    out: list[str] = []
    matched = {match.line for match in matches}
    last = 0
    for match in matches:
        first = match.line - len(match.context_before)
        if out and first > last + 1:
            out.append("  --")
        for offset, text in enumerate(match.context_before):
            number = first + offset
            if number > last:
                out.append(f"  {number}- {text}")
        around = f"  « {match.symbol}" if match.symbol else ""
        out.append(f"  {match.line}: {match.text}{around}")
        last = match.line
        for offset, text in enumerate(match.context_after, start=1):
            number = match.line + offset
            if number in matched:
                break  # the next match prints itself
            out.append(f"  {number}- {text}")
            last = number
    return out


# --- indexing, projects, status -----------------------------------------------------


def _counts(pairs: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in pairs.items())


def index_render(result) -> str:
    skipped = (
        f" ({_counts(result.skipped_by_reason)})" if result.skipped_by_reason else ""
    )
    return "\n".join(
        [
            f"indexed {result.repository_path} into project {result.project.name} "
            f"in {result.duration_seconds:.1f} s",
            f"files: {result.files_indexed} indexed, {result.files_unchanged} "
            f"unchanged, {result.files_deleted} deleted, {result.files_skipped} "
            f"skipped{skipped}",
            f"chunks: {result.chunks_total} in the repository, {result.chunks_written} "
            f"written, {result.chunks_embedded} embedded ({result.embedding_model})",
        ]
    )


def refresh_render(result) -> str:
    lines = [
        f"refreshed {len(result.repositories)} repositories of project "
        f"{result.project.name} in {result.duration_seconds:.2f} s"
    ]
    for repo in result.repositories:
        changed = repo.files_indexed + repo.files_deleted
        lines.append(
            f"{repo.repository_path}: "
            + (
                f"{repo.files_indexed} re-indexed, {repo.files_deleted} removed, "
                f"{repo.chunks_written} chunks written, {repo.chunks_embedded} embedded"
                if changed
                else "up to date"
            )
            + f" ({repo.files_unchanged} unchanged)"
        )
        for path, reason in sorted(repo.paths_refused.items()):
            lines.append(f"  not indexed: {path} ({reason})")
    return "\n".join(lines)


def job_started_render(result) -> str:
    return (
        f"job {result.job_id} {result.status}: indexing {result.repo_path} into "
        f"project {result.project.name}; poll get_indexing_status(job_id)"
    )


def job_render(result) -> str:
    lines = [
        f"job {result.job_id} {result.status} ({result.phase}): {result.repo_path}",
        f"files: {result.files_done} of {result.files_total} done, "
        f"{result.files_indexed} indexed, {result.files_unchanged} unchanged, "
        f"{result.files_deleted} deleted, {result.files_skipped} skipped",
        f"chunks: {result.chunks_embedded} of {result.chunks_total} embedded",
    ]
    embedding = embedding_progress_text(
        phase=result.phase,
        chunks_embedded=result.chunks_embedded,
        chunks_to_embed=result.chunks_to_embed,
        embed_rate=result.embed_rate,
        eta_seconds=result.eta_seconds,
    )
    if embedding:
        lines.append(embedding)
    if len(result.embedded_by) > 1:
        lines.append(
            "workers: "
            + ", ".join(f"{w} {n}" for w, n in sorted(result.embedded_by.items()))
        )
    if result.error:
        lines.append(f"error: {result.error}")
    return "\n".join(lines)


def projects_render(result) -> str:
    lines = [f"{len(result.projects)} projects"]
    lines.extend(
        f"{p.name}  {p.id}  {p.database_name}"
        + (f"  — {p.description}" if p.description else "")
        for p in result.projects
    )
    return "\n".join(lines)


def project_render(result) -> str:
    return f"project {result.name} ({result.id}), database {result.database_name}" + (
        f": {result.description}" if result.description else ""
    )


def status_render(result) -> str:
    project = result.project
    lines = [
        f"project {project.name} ({project.resolved_by}), database "
        f"{project.database_name}",
        f"{result.files} files, {result.chunks} chunks, {result.embedded_chunks} "
        f"embedded ({result.embedded_fraction:.0%}, {result.embedding_model or 'none'})"
        + (
            f", {result.symbols} symbols, {result.references} references"
            if result.symbols is not None
            else ""
        ),
        f"last indexed: {result.last_indexed_at or 'never'}",
    ]
    lines.extend(
        f"repository {r.path}: {r.files} files, {r.chunks} chunks, "
        f"{r.embedded_chunks} embedded, indexed "
        f"{r.last_indexed_at.isoformat(timespec='seconds') if r.last_indexed_at else 'never'}"
        + _freshness(r)
        for r in result.repositories
    )
    lines.extend(
        f"running: job {job.job_id} {job.status} ({job.phase}) {job.repo_path}"
        for job in result.running_jobs
    )
    return "\n".join(lines)


def _commit(commit: str | None, branch: str | None) -> str:
    return f"{commit[:12]}{f' ({branch})' if branch else ''}" if commit else "none"


def _freshness(r) -> str:
    """Say how far a repository's index is behind its files, in one clause each."""
    parts = []
    if r.indexed_commit or r.head_commit:
        if r.indexed_commit == r.head_commit:
            parts.append(f"at {_commit(r.head_commit, r.head_branch)}")
        else:
            parts.append(
                f"index at {_commit(r.indexed_commit, r.indexed_branch)}, "
                f"checked out {_commit(r.head_commit, r.head_branch)}"
            )
    if r.files_changed:
        parts.append(f"{r.files_changed} files changed since indexing")
    if r.vectors_missing:
        parts.append(f"{r.vectors_missing} chunks without vectors")
    parts.append("watched" if r.watcher_running else "not watched")
    return "; " + "; ".join(parts)


def working_directory_render(result) -> str:
    config = result.config_path or "no .codebase-mcp/config.json (default tiers)"
    return (
        f"working directory {result.directory}: project {result.project.name} "
        f"({result.project.resolved_by}; {config})"
    )


# --- the budget -------------------------------------------------------------------------


def answer_fit(
    *,
    result: BaseModel,
    render: Callable[[BaseModel], str],
    items: Callable[[BaseModel], list],
    max_tokens: int | None,
    mark: Callable[[BaseModel, int], None],
) -> str:
    """Render, dropping trailing items of the list until the text fits max_tokens.

    The result is cut in place, so the structured content holds what the
    text shows, and `mark(result, dropped)` records the cut (a note, a
    truncated flag). The first item stays even when it alone is over
    budget: an answer of nothing helps no one.
    """
    text = render(result)
    if max_tokens is None or tokens_estimate(text) <= max_tokens:
        return text
    listed = items(result)
    full = list(listed)
    keep, low, high = 1, 1, len(full) - 1
    # Halving: each try is one render.
    while low <= high:
        middle = (low + high) // 2
        listed[:] = full[:middle]
        if tokens_estimate(render(result)) <= max_tokens:
            keep, low = middle, middle + 1
        else:
            high = middle - 1
    listed[:] = full[:keep]
    if keep < len(full):
        mark(result, len(full) - keep)
    return render(result)
