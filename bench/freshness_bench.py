"""How fresh a real watcher keeps the index of a 10k-file git repository.

Run: CODEBASE_MCP_HOME=/tmp/fbench .venv/bin/python bench/freshness_bench.py
     [--files 10200] [--edits 30] [--switch 500] [--idle 30] [--keep]

The corpus is real Python: the smallest files (300 bytes and up) of the
virtualenv's site-packages and of the pyenv standard libraries on this
machine, copied under /tmp/freshness_bench/repo and committed to git. The
smallest, so that embedding the whole corpus once (the watcher's first
batch embeds every chunk still without a vector) takes minutes, not an
hour on two cores; a watcher, a stat scan and a branch switch cost the same
per file either way. With --keep the corpus and its project are reused.

Then, with a real `manage.py watch` process:
- edit-to-searchable latency, one file edited at a time (a uniquely named
  function appended): keyword (the name found by chunk_search) and semantic
  (the new chunk has its vector, which the HNSW index holds from the same
  commit; checked with a semantic search on a few);
- a branch switch touching --switch files, until every file is fresh
  (keyword) and every chunk has a vector;
- the watcher's CPU while idle (/proc/PID/stat over --idle seconds) and RSS;
- refresh_index with nothing changed (repositories_refresh, in process).
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from machine import ROOT, django_setup, machine_description

BASE = Path("/tmp/freshness_bench")
REPO = BASE / "repo"
PROJECT = "freshness-bench"
SEED = 16
MIN_BYTES = 300
POLL = 0.02


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary_line(label: str, values: list[float], goal: str) -> str:
    return (
        f"  {label:<34} n={len(values):<3} p50 {statistics.median(values):6.3f} s  "
        f"p95 {pct(values, 0.95):6.3f} s  max {max(values):6.3f} s  (goal {goal})"
    )


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=bench@local", "-c", "user.name=bench", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def corpus_build(files: int) -> None:
    """Copy the smallest real Python files of this machine into a git repository."""
    import site

    sources = [Path(site.getsitepackages()[0])] + [
        Path(p)
        for p in sorted(
            glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/lib/python3.*"))
        )
    ]
    candidates: list[tuple[int, Path, str]] = []
    for number, source in enumerate(sources):
        for path in source.rglob("*.py"):
            if (
                "__pycache__" in path.parts
                or "site-packages" in path.parts[len(source.parts) :]
            ):
                continue
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size >= MIN_BYTES and path.is_file():
                candidates.append(
                    (size, path, f"src{number}/{path.relative_to(source)}")
                )
    candidates.sort()
    chosen = candidates[:files]
    if len(chosen) < files:
        sys.exit(f"only {len(chosen)} files of {MIN_BYTES}+ bytes found")
    shutil.rmtree(BASE, ignore_errors=True)
    REPO.mkdir(parents=True)
    for _, path, relative in chosen:
        target = REPO / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "corpus")
    print(
        f"  corpus: {len(chosen)} files, {sum(s for s, _, _ in chosen) / 1e6:.1f} MB "
        f"({chosen[0][0]}-{chosen[-1][0]} bytes each) from {len(sources)} trees"
    )


class WatchProcess:
    """`manage.py watch` as a subprocess; its stdout lines are collected."""

    def __init__(self, project: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "watch", "--project", project],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        for stream, into in (
            (self.process.stdout, self.lines),
            (self.process.stderr, self.errors),
        ):
            threading.Thread(
                target=self._read, args=(stream, into), daemon=True
            ).start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline or self.process.poll() is not None:
                sys.exit(
                    f"watcher: no {text!r} line: {self.lines[-5:]} {self.errors[-5:]}"
                )
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        fields = (
            Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        )
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def probe_source(name: str) -> str:
    return (
        f"\n\ndef {name}(ledger, period):\n"
        f'    """Reconcile the ledger balances of one accounting period."""\n'
        f"    return sum(entry.amount for entry in ledger if entry.period == period)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10200)
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--switch", type=int, default=500)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="Reuse corpus and project.")
    args = parser.parse_args()
    print(machine_description())
    django_setup()
    from django.core.management import call_command
    from django.db import connections

    from indexing.models import CodeChunk, CodeFile, CodeSymbol
    from indexing.services import repositories_refresh, repository_index
    from registry.selectors import project_find
    from registry.services import project_alias, project_create, project_delete
    from search.selectors import chunk_search

    call_command("migrate", verbosity=0)
    project = project_find(reference=PROJECT)
    if not (args.keep and project is not None and REPO.is_dir()):
        if project is not None:
            project_delete(project=project)
        print("preparing (not timed as freshness):")
        corpus_build(args.files)
        project = project_create(name=PROJECT)
        started = time.perf_counter()
        summary = repository_index(project=project, repo_path=str(REPO))
        print(
            f"  full index: {summary.files_indexed} files, {summary.chunks_total} chunks "
            f"in {time.perf_counter() - started:.0f} s (store {summary.store_seconds:.0f} s, "
            f"embed {summary.embed_seconds:.0f} s)"
        )
    git("checkout", "-q", "main")
    alias = project_alias(project=project)
    root = str(REPO.resolve())
    files = list(CodeFile.objects.using(alias).values_list("relative_path", flat=True))
    print(
        f"repository: {len(files)} indexed files, "
        f"{CodeChunk.objects.using(alias).count()} chunks"
    )
    connections.close_all()

    watcher = WatchProcess(PROJECT)
    started = time.perf_counter()
    watcher.wait_for("catch-up", timeout=600)
    print(
        f"watcher start + catch-up scan: {time.perf_counter() - started:.2f} s "
        f"({watcher.lines[-1]})"
    )
    rng = random.Random(SEED)

    def keyword_found(name: str) -> bool:
        response = chunk_search(project=project, query=name, mode="keyword", limit=1)
        return bool(response.results) and name in response.results[0].content

    def vector_present(name: str) -> bool:
        return (
            CodeChunk.objects.using(alias)
            .filter(symbol=name, embedding__isnull=False)
            .exists()
        )

    keyword: list[float] = []
    semantic: list[float] = []
    semantic_hits = 0
    try:
        chunk_search(project=project, query="warm up", mode="semantic", limit=1)
        for number in range(args.edits):
            relative = rng.choice(files)
            name = f"reconcile_probe_{number}_{uuid.uuid4().hex[:6]}"
            edited = time.perf_counter()
            with open(REPO / relative, "a", encoding="utf-8") as handle:
                handle.write(probe_source(name))
            found_keyword = None
            while time.perf_counter() - edited < 30:
                now = time.perf_counter()
                if found_keyword is None and keyword_found(name):
                    found_keyword = now - edited
                if found_keyword is not None and vector_present(name):
                    semantic.append(time.perf_counter() - edited)
                    break
                time.sleep(POLL)
            else:
                sys.exit(f"edit {number} ({relative}) not fresh after 30 s")
            keyword.append(found_keyword)
            if number % 10 == 0:
                hits = chunk_search(
                    project=project,
                    query=f"{name.replace('_', ' ')} reconcile the ledger balances "
                    "of one accounting period",
                    mode="semantic",
                    limit=10,
                ).results
                semantic_hits += any(hit.symbol == name for hit in hits)
            time.sleep(0.3)
        print("edit to searchable, one file:")
        print(summary_line("keyword (name found)", keyword, "< 1 s"))
        print(summary_line("semantic (vector stored)", semantic, "< 2 s"))
        print(
            f"  semantic search found the probe in its top 10: {semantic_hits} of "
            f"{len(range(0, args.edits, 10))} checked"
        )
        git("checkout", "-q", "--", ".")
        time.sleep(2.0)

        # A branch touching --switch files, prepared while the watcher watches.
        switched = rng.sample(files, args.switch)
        git("checkout", "-q", "-b", f"switch-{uuid.uuid4().hex[:6]}")
        for n, relative in enumerate(switched):
            with open(REPO / relative, "a", encoding="utf-8") as handle:
                handle.write(probe_source(f"branch_marker_{n}"))
        git("commit", "-q", "-am", "switch")
        deadline = time.monotonic() + 300
        while (
            CodeSymbol.objects.using(alias)
            .filter(name__startswith="branch_marker_")
            .count()
            < args.switch
        ):
            if time.monotonic() > deadline:
                sys.exit("the branch's files were not indexed")
            time.sleep(0.2)
        while CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists():
            time.sleep(0.2)
        time.sleep(2.0)
        before = len(watcher.lines)
        started = time.perf_counter()
        git("checkout", "-q", "main")
        checkout = time.perf_counter() - started
        keyword_fresh = None
        while time.perf_counter() - started < 300:
            if (
                keyword_fresh is None
                and not CodeSymbol.objects.using(alias)
                .filter(name__startswith="branch_marker_")
                .exists()
            ):
                keyword_fresh = time.perf_counter() - started
            if (
                keyword_fresh is not None
                and not CodeChunk.objects.using(alias)
                .filter(embedding__isnull=True)
                .exists()
            ):
                break
            time.sleep(POLL * 5)
        fully = time.perf_counter() - started
        print(
            f"branch switch touching {args.switch} files (git checkout {checkout:.2f} s):"
        )
        print(
            f"  keyword fresh after {keyword_fresh:.2f} s, fully fresh (vectors) after "
            f"{fully:.2f} s (goal < 60 s)"
        )
        time.sleep(2.0)
        for line in watcher.lines[before:]:
            print(f"    watcher: {line}")

        time.sleep(3.0)
        cpu_before = watcher.cpu_seconds()
        time.sleep(args.idle)
        idle = (watcher.cpu_seconds() - cpu_before) / args.idle * 100
        print(
            f"watcher idle: {idle:.2f} % of a core over {args.idle:.0f} s "
            f"(goal < 1 %), RSS {watcher.rss_mb():.0f} MB"
        )

        refreshes = []
        for _ in range(7):
            started = time.perf_counter()
            result = repositories_refresh(project=project)
            refreshes.append(time.perf_counter() - started)
        assert all(s.files_indexed == 0 and s.files_deleted == 0 for s in result)
        print(
            summary_line("refresh_index, nothing changed", refreshes, "< 0.5 s")
            + f" over {result[0].files_unchanged} files"
        )
    finally:
        watcher.stop()
        if watcher.errors:
            print("watcher stderr:", *watcher.errors[-10:], sep="\n  ")
        print(f"watcher exit code {watcher.process.returncode}; corpus {root}")


if __name__ == "__main__":
    main()
