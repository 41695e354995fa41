"""A second embedded PostgreSQL server, and projects with code to search."""

import hashlib
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import psycopg
import pytest

from registry.dbserver import (
    SUPERUSER,
    ServerLayout,
    server_ensure,
    server_layout,
    server_stop,
    server_wait_stopped,
)

FILES = {
    "src/net/retry.py": """
        import time


        def retry_with_backoff(call, attempts=3):
            delay = 0.1
            for _ in range(attempts):
                try:
                    return call()
                except OSError:
                    time.sleep(delay)
                    delay *= 2
            raise RuntimeError("gave up")
        """,
    "src/net/headers.py": """
        def parseHTTPHeader(line):
            name, _, value = line.partition(":")
            return name.strip().lower(), value.strip()
        """,
    "src/billing/invoice.py": """
        class Invoice:
            def total_with_tax(self, rate):
                subtotal = sum(line.price * line.quantity for line in self.lines)
                return round(subtotal * (1 + rate), 2)
        """,
    "web/cart.ts": """
        export function formatPrice(amount: number, currency: string): string {
          const format = new Intl.NumberFormat("en", { style: "currency", currency });
          return format.format(amount);
        }
        """,
}
QUERIES = (
    ("try the call again after waiting longer each time", "hybrid"),
    ("parse http header", "keyword"),
    ("price with tax of an invoice", "semantic"),
)


@dataclass(frozen=True)
class Server:
    """A running embedded server and its PROJECT_DATABASE_SERVERS URL."""

    layout: ServerLayout
    url: str

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.layout.socket_dir),
            port=self.layout.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=True,
        )


def socket_url(layout: ServerLayout) -> str:
    """Return the postgres:// URL of a server that listens on a unix socket."""
    # No host, the percent-encoded socket directory in its place before the
    # database: the form django-environ reads as HOST=<directory>.
    directory = quote(str(layout.socket_dir), safe="")
    return f"postgres://{SUPERUSER}@:{layout.port}/{directory}/postgres"


@pytest.fixture(scope="session")
def second_server(tmp_path_factory) -> Server:
    """Start a second embedded server (as codebase-mcp when root); stop it after."""
    layout = server_layout(home=tmp_path_factory.mktemp("second-home"))
    server_ensure(layout=layout)
    try:
        yield Server(layout=layout, url=socket_url(layout))
    finally:
        server_stop(layout=layout)
        server_wait_stopped(layout=layout)
        # As root the files live under /var/lib/codebase-mcp/<hash of the home>.
        shutil.rmtree(layout.root, ignore_errors=True)
        shutil.rmtree(layout.socket_dir, ignore_errors=True)


@pytest.fixture
def servers(settings, second_server) -> Server:
    """Configure `second` next to `default` for the duration of a test."""
    settings.PROJECT_DATABASE_SERVERS = {"second": second_server.url}
    return second_server


@pytest.fixture
def make_project(servers, project_factory):
    """Create a project (after `servers`, so it is dropped before they go)."""
    return project_factory


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    for relative, source in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return root


def answers(project) -> list[list[tuple]]:
    """Return what every query of QUERIES finds in a project, scores included."""
    from registry.selectors import project_get
    from search.selectors import chunk_search

    fresh = project_get(reference=project.pk)
    return [
        [
            (hit.file_path, hit.start_line, hit.end_line, hit.symbol, hit.score)
            for hit in chunk_search(project=fresh, query=query, mode=mode).results
        ]
        for query, mode in QUERIES
    ]


class FakeEmbedder:
    """A deterministic 16-d embedder: another model than the configured one."""

    model_id = "test-fake-16d"
    dimension = 16

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
        rng = np.random.default_rng(seed)
        vector = rng.standard_normal(self.dimension).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def embed_documents(self, texts) -> np.ndarray:
        return np.stack([self._vector(text) for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)
