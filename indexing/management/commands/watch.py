"""`manage.py watch [PATH ...]`: keep a project's index fresh as files change."""

import signal

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from indexing.exceptions import IndexingError
from indexing.watching import WatchNote, watch_sender, watcher_start
from registry.exceptions import RegistryError
from registry.selectors import project_get
from registry.services import project_default_ensure


class Command(BaseCommand):
    help = (
        "Watch repositories of a project and re-index the files that change "
        "(debounced; a branch switch or changed ignore rules rescan the "
        "repository). Catches up with what changed while no watcher ran. With "
        "CELERY_BROKER_URL set, batches are queued as Celery tasks. Ctrl-C stops."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths",
            nargs="*",
            help="Repository roots to watch (default: every indexed repository of "
            "the project); a path inside an indexed repository means that one.",
        )
        parser.add_argument(
            "--project", help="Project name or id (default: `default`)."
        )

    def handle(self, *args, **options):
        # SIGTERM ends the watcher as Ctrl-C does: quietly, locks released.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            project = (
                project_get(reference=options["project"])
                if options["project"]
                else project_default_ensure()
            )
            watcher = watcher_start(
                project=project,
                paths=options["paths"] or None,
                report=self._note,
                sender=watch_sender(),
            )
        except (IndexingError, RegistryError) as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            return
        try:
            self._note(
                WatchNote(
                    "info",
                    f"watching {len(watcher.roots)} repositories of project "
                    f"{project.name!r}: {', '.join(watcher.roots)}",
                )
            )
            watcher.serve()
        except KeyboardInterrupt:
            pass
        finally:
            watcher.close()
            connections.close_all()

    def _note(self, note: WatchNote) -> None:
        # Called from the listener thread too; one write per line keeps lines whole.
        if note.level == "error":
            self.stderr.write(note.text)
            self.stderr.flush()
        else:
            self.stdout.write(note.text)
            self.stdout.flush()


def _interrupt(signum, frame):
    raise KeyboardInterrupt
