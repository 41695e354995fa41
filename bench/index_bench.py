"""Time indexing a real repository: cold, then unchanged.

Run: .venv/bin/python bench/index_bench.py [--path DIR] [--embed/--no-embed]

Default corpus: Django's own source tree in the virtualenv. Each run uses a
throw-away project (dropped at the end) on the embedded server of
CODEBASE_MCP_HOME. Figures: files/s, chunks/s, the share of time spent
embedding, and the peak RSS of this process.
"""

import argparse
import resource
import time
import uuid
from pathlib import Path

from machine import django_setup, machine_description


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--path", help="Repository to index (default: Django's source)."
    )
    parser.add_argument(
        "--no-embed",
        action="store_true",
        help="Store chunks only (keyword-searchable).",
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the project afterwards."
    )
    args = parser.parse_args()
    django_setup()
    import django as django_package
    from django.core.management import call_command

    from indexing.embedders import embedder_get
    from indexing.services import repository_index
    from registry.services import project_create, project_delete
    from search.selectors import chunk_search

    path = args.path or str(Path(django_package.__file__).resolve().parent)
    call_command("migrate", verbosity=0)
    print(machine_description())
    embedder = None if args.no_embed else embedder_get()
    print(f"corpus: {path}")
    print(f"embedder: {embedder.model_id if embedder else 'none (keyword only)'}")
    project = project_create(name=f"bench-index-{uuid.uuid4().hex[:6]}")
    try:
        for label in ("cold", "unchanged"):
            started = time.perf_counter()
            summary = repository_index(
                project=project, repo_path=path, embed=embedder is not None
            )
            seconds = time.perf_counter() - started
            files = summary.files_indexed + summary.files_unchanged
            print(
                f"{label:<9} {seconds:7.2f} s  files {files} ({files / seconds:7.0f}/s)  "
                f"indexed {summary.files_indexed}  skipped {summary.files_skipped}  "
                f"chunks {summary.chunks_total} written {summary.chunks_written}"
            )
            print(
                f"          store {summary.store_seconds:6.2f} s "
                f"({summary.chunks_written / max(summary.store_seconds, 1e-9):7.0f} chunks/s)"
                f"  embed {summary.embed_seconds:6.2f} s"
                + (
                    f" ({summary.chunks_embedded / summary.embed_seconds:6.1f} chunks/s,"
                    f" {summary.embed_seconds / seconds:4.0%} of the run)"
                    if summary.embed_seconds and summary.chunks_embedded
                    else ""
                )
            )
        probe = chunk_search(
            project=project, query="render a template", limit=3, mode="keyword"
        )
        print(
            f"keyword search after indexing: {probe.latency_ms:.1f} ms, {probe.total_count} hits"
        )
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
    finally:
        if not args.keep:
            project_delete(project=project)


if __name__ == "__main__":
    main()
