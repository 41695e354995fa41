"""`manage.py index PATH`: index a repository into a project, with progress."""

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from indexing.exceptions import IndexingError
from indexing.selectors import duration_text
from indexing.services import IndexProgress, repository_index
from registry.exceptions import RegistryError
from registry.selectors import project_get
from registry.services import project_default_ensure


class Command(BaseCommand):
    help = (
        "Index a repository into a project (default: the `default` project). "
        "Unchanged files are skipped; deleted files lose their chunks."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Absolute path of the repository to index.")
        parser.add_argument(
            "--project", help="Project name or id (default: `default`)."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Re-chunk every file, even unchanged ones.",
        )
        parser.add_argument(
            "--reembed",
            action="store_true",
            help="Drop every vector (of any model or older settings) and embed everything again.",
        )
        parser.add_argument(
            "--no-embed",
            action="store_true",
            help="Store chunks for keyword search only; embed later with another run.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the summary as JSON."
        )

    def handle(self, *args, **options):
        try:
            project = (
                project_get(reference=options["project"])
                if options["project"]
                else project_default_ensure()
            )
            bar = _ProgressBar(self.stderr) if sys.stderr.isatty() else None
            summary = repository_index(
                project=project,
                repo_path=options["path"],
                force_reindex=options["force"],
                reembed=options["reembed"],
                embed=not options["no_embed"],
                progress=bar,
            )
        except (IndexingError, RegistryError) as exc:
            raise CommandError(str(exc)) from exc
        if bar:
            bar.finish()
        if options["json"]:
            self.stdout.write(
                json.dumps({"project": project.name, **summary.as_dict()})
            )
            return
        self.stdout.write(self.style.SUCCESS(f"Indexed {summary.repository_path}"))
        self.stdout.write(f"  project:   {project.name} ({project.database_name})")
        self.stdout.write(
            f"  files:     {summary.files_indexed} indexed, {summary.files_unchanged} "
            f"unchanged, {summary.files_deleted} deleted, {summary.files_skipped} skipped"
        )
        if summary.skipped_by_reason:
            reasons = ", ".join(
                f"{k} {v}" for k, v in summary.skipped_by_reason.items()
            )
            self.stdout.write(f"  skipped:   {reasons}")
        self.stdout.write(
            f"  chunks:    {summary.chunks_total} in repository, "
            f"{summary.chunks_written} written, {summary.chunks_embedded} embedded"
        )
        self.stdout.write(
            f"  seconds:   {summary.seconds:.1f} (store {summary.store_seconds:.1f}, "
            f"embed {summary.embed_seconds:.1f})"
        )


class _ProgressBar:
    """Draw one updating line on a terminal: phase, counts, rate, ETA."""

    def __init__(self, stream, width: int = 28) -> None:
        self.stream = stream
        self.width = width
        self.started = time.monotonic()
        self.phase_started = self.started
        self.phase = ""

    def __call__(self, progress: IndexProgress) -> None:
        if progress.phase != self.phase:
            self.phase = progress.phase
            self.phase_started = time.monotonic()
        if progress.phase == "embedding":
            done, total, unit = (
                progress.chunks_embedded,
                progress.chunks_to_embed,
                "chunks",
            )
        else:
            done, total, unit = progress.files_done, progress.files_total, "files"
        elapsed = max(time.monotonic() - self.phase_started, 1e-6)
        if progress.phase == "embedding":
            # The service's speed over the last half-minute, counting every
            # worker: the same figures get_indexing_status and the API show.
            rate = progress.embed_rate
            eta = (
                "ETA    ?"
                if progress.eta_seconds is None
                else f"ETA {duration_text(progress.eta_seconds):>8}"
            )
        else:
            rate = done / elapsed
            left = (total - done) / rate if rate and total >= done else 0.0
            eta = f"ETA {duration_text(left):>8}"
        filled = int(self.width * done / total) if total else self.width
        filled = min(self.width, filled)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(
            f"\r{progress.phase:<9} [{bar}] {done}/{total} {unit} "
            f"{rate:6.1f}/s {eta} "
            f"chunks {progress.chunks_written or progress.chunks_total}",
            ending="",
        )
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("")
