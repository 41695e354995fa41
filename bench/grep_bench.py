"""Time grep_code against ripgrep on the same files; measure what the file texts cost.

Run: CODEBASE_MCP_HOME=/tmp/bench-grep CODEBASE_MCP_ALLOWED_ROOTS=/ \\
     .venv/bin/python bench/grep_bench.py [--large PATH] [--runs N] [--skip-large]

Corpora: Django's source tree (from the virtualenv) and a large one (default:
the virtualenv's site-packages, about 10k files), each indexed keyword-only
into a throw-away project. For Django also the store phase with and without
file texts (the same code path, the text COPY switched off) and the disk the
texts and their trigram index take.

Patterns in four classes: selective literals (rare identifiers drawn by a
seeded choice from the symbol table), selective regexes built on them, common
words, and patterns no trigram can narrow. Each runs `runs` times through
grep_code in process (the tool's defaults: 100 lines listed, counting goes on
for GREP_COUNT_SECONDS) and through ripgrep over exactly the indexed files
(`rg -n` with the file list; its output read and thrown away), in the same run.
The ratio is grep_code p50 / ripgrep p50 per pattern, then the median per class.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from machine import django_setup, machine_description, percentile

SEED = 11
RIPGREP = shutil.which("rg")


def store(project, path: str, *, texts: bool = True) -> float:
    import indexing.storing as storing
    from indexing.services import repository_index

    original = storing._texts_write
    if not texts:
        storing._texts_write = lambda **_: None
    try:
        started = time.perf_counter()
        summary = repository_index(project=project, repo_path=path, embed=False)
        seconds = time.perf_counter() - started
    finally:
        storing._texts_write = original
    print(
        f"  indexed {summary.files_indexed} files, {summary.chunks_total} chunks in "
        f"{seconds:.1f} s ({'with' if texts else 'without'} file texts)"
    )
    return seconds


def text_disk(alias: str) -> tuple[int, int, int]:
    """Return (bytes of text held, table + TOAST bytes, trigram index bytes).

    The trigram bytes are both indexes: the plain one and the one that
    reads `_` as a letter (indexing migration 0006).
    """
    from registry.databases import project_connection

    with project_connection(database_name=alias).cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(octet_length(content)), 0), "
            "pg_table_size('code_text_segments'), "
            "pg_relation_size('code_text_segments_trgm') "
            "+ pg_relation_size('code_text_segments_joined_trgm') "
            "FROM code_text_segments"
        )
        return cursor.fetchone()


def patterns(alias: str) -> dict[str, list[tuple[str, dict]]]:
    from indexing.models import CodeSymbol

    rng = random.Random(SEED)
    names = sorted(
        {
            name
            for name in CodeSymbol.objects.using(alias)
            .filter(kind__in=["function", "method", "class"])
            .values_list("name", flat=True)
            if len(name) >= 10 and name.isidentifier()
        }
    )
    rare = rng.sample(names, 8)
    return {
        "selective literal": [(name, {}) for name in rare],
        "selective regex": [
            (rf"def {name[:6]}\w*\(", {"regex": True}) for name in rare[:4]
        ]
        + [(rf"{name[:5]}\w+\s*=", {"regex": True}) for name in rare[4:]],
        "common word": [
            ("self", {}),
            ("return", {}),
            ("import", {"whole_word": True}),
            ("none", {"case_sensitive": False}),
        ],
        "unindexable": [
            (r"\d{4}-\d{2}", {"regex": True}),
            (r"^\s*$", {"regex": True}),
            (r"[{}]$", {"regex": True}),
            (r"a|.", {"regex": True}),
        ],
    }


def rg_command(files_list: Path, pattern: str, options: dict) -> list[str]:
    flags = ["-n", "--no-heading", "--with-filename", "--no-config"]
    if not options.get("regex"):
        flags.append("-F")
    if not options.get("case_sensitive", True):
        flags.append("-i")
    if options.get("whole_word"):
        flags.append("-w")
    return [RIPGREP, *flags, "-e", pattern, "--", *files_list.read_text().split("\0")]


def timed_rg(root: str, command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def compare(project, alias: str, root: str, runs: int, scratch: Path) -> None:
    from indexing.models import CodeFile
    from search.grep import code_grep

    files = sorted(
        CodeFile.objects.using(alias).values_list("relative_path", flat=True)
    )
    listing = scratch / f"files-{alias}"
    listing.write_text("\0".join(files))
    ratios: dict[str, list[float]] = {}
    slowest = 0.0
    for kind, entries in patterns(alias).items():
        print(f"  {kind}:")
        for pattern, options in entries:
            code_grep(project=project, pattern=pattern, **options)
            ours = []
            for _ in range(runs):
                started = time.perf_counter()
                result = code_grep(project=project, pattern=pattern, **options)
                ours.append((time.perf_counter() - started) * 1000)
            command = rg_command(listing, pattern, options)
            timed_rg(root, command)
            theirs = [timed_rg(root, command) for _ in range(runs)]
            ratio = statistics.median(ours) / statistics.median(theirs)
            ratios.setdefault(kind, []).append(ratio)
            slowest = max(slowest, max(ours))
            more = "" if result.totals_exact else "≥"
            print(
                f"    {pattern[:28]:<28} {str(options or ''):<26} grep_code p50 "
                f"{statistics.median(ours):7.1f} p95 {percentile(ours, 0.95):7.1f} ms"
                f" | rg p50 {statistics.median(theirs):7.1f} ms | x{ratio:5.2f}"
                f" | {more}{result.matches} lines in {result.files_matched} files,"
                f" {result.candidate_files} candidates"
                f"{'' if result.indexed else ', unindexed'}"
            )
    print("  ratio grep_code / ripgrep (median per class):")
    for kind, values in ratios.items():
        print(f"    {kind:<18} x{statistics.median(values):.2f}")
    print(f"  slowest single call: {slowest:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", help="Large corpus (default: site-packages).")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    if RIPGREP is None:
        sys.exit("ripgrep is not installed (apt-get install ripgrep)")
    django_setup()
    import django as django_package
    from django.conf import settings
    from django.core.management import call_command

    from registry.services import project_alias, project_create, project_delete

    call_command("migrate", verbosity=0)
    print(machine_description())
    print(
        subprocess.run(
            [RIPGREP, "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0]
    )
    print(
        f"settings: GREP_TIMEOUT_SECONDS={settings.GREP_TIMEOUT_SECONDS}, "
        f"GREP_COUNT_SECONDS={settings.GREP_COUNT_SECONDS}, "
        f"GREP_SCAN_LIMIT_FILES={settings.GREP_SCAN_LIMIT_FILES}"
    )
    scratch = Path(settings.CODEBASE_MCP_HOME) / "grep-bench"
    scratch.mkdir(parents=True, exist_ok=True)
    django_path = str(Path(django_package.__file__).resolve().parent)
    large = args.large or str(Path(django_package.__file__).resolve().parents[1])
    made = []
    try:
        print(f"corpus: Django {django_package.__version__} at {django_path}")
        plain = project_create(name=f"bench-grep-plain-{uuid.uuid4().hex[:6]}")
        made.append(plain)
        without = store(plain, django_path, texts=False)
        project = project_create(name=f"bench-grep-{uuid.uuid4().hex[:6]}")
        made.append(project)
        with_texts = store(project, django_path)
        alias = project_alias(project=project)
        held, table, trigram = text_disk(alias)
        print(
            f"  store phase: {without:.1f} s without, {with_texts:.1f} s with file "
            f"texts (+{(with_texts / without - 1) * 100:.0f} %)"
        )
        print(
            f"  disk: {held / 2**20:.1f} MiB of text -> table+TOAST "
            f"{table / 2**20:.1f} MiB, trigram index {trigram / 2**20:.1f} MiB"
        )
        compare(project, alias, django_path, args.runs, scratch)
        if not args.skip_large:
            print(f"corpus: {large}")
            big = project_create(name=f"bench-grep-large-{uuid.uuid4().hex[:6]}")
            made.append(big)
            store(big, large)
            big_alias = project_alias(project=big)
            held, table, trigram = text_disk(big_alias)
            print(
                f"  disk: {held / 2**20:.1f} MiB of text -> table+TOAST "
                f"{table / 2**20:.1f} MiB, trigram index {trigram / 2**20:.1f} MiB"
            )
            compare(big, big_alias, large, args.runs, scratch)
    finally:
        for project in made:
            project_delete(project=project)


if __name__ == "__main__":
    os.environ.setdefault("CODEBASE_MCP_HOME", "/tmp/bench-grep")
    main()
