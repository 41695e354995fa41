"""Indexing a real repository into a real project database, incrementally."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from django.db import connections

from indexing.exceptions import (
    EmbeddingModelMismatch,
    IndexingInProgress,
    RepositoryPathInvalid,
)
from indexing.models import CodeChunk, CodeFile, EmbeddingSpace, Repository
from indexing.services import repository_index
from registry.databases import repository_lock_key
from registry.services import project_alias

ROOT = Path(__file__).resolve().parents[2]

PY_SOURCE = textwrap.dedent(
    '''
    import time


    def retry_with_backoff(call, attempts=3):
        """Call again after waiting longer each time."""
        delay = 0.1
        for _ in range(attempts):
            try:
                return call()
            except OSError:
                time.sleep(delay)
                delay *= 2
        raise RuntimeError("gave up")


    class HeaderParser:
        def parse_header(self, line):
            name, _, value = line.partition(":")
            return name.strip().lower(), value.strip()
    '''
)

JS_SOURCE = textwrap.dedent(
    """
    export function formatPrice(amount, currency) {
      return new Intl.NumberFormat("en", { style: "currency", currency }).format(amount);
    }

    export class Cart {
      total() {
        return this.items.reduce((sum, item) => sum + item.price, 0);
      }
    }
    """
)


def make_repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "net.py").write_text(PY_SOURCE)
    (root / "web.js").write_text(JS_SOURCE)
    (root / "README.md").write_text("# Demo\n\nA tiny repository for tests.\n")
    return root


def chunk_rows(alias: str) -> list[tuple]:
    return sorted(
        CodeChunk.objects.using(alias).values_list(
            "relative_path", "start_line", "end_line", "content_sha256"
        )
    )


@pytest.fixture
def project(project_factory):
    return project_factory()


def test_index_stores_files_chunks_and_vectors(project, tmp_path):
    repo = make_repo(tmp_path / "repo")
    summary = repository_index(project=project, repo_path=str(repo))
    alias = project_alias(project=project)

    assert summary.files_indexed == 3
    assert summary.chunks_total == CodeChunk.objects.using(alias).count() > 0
    assert summary.chunks_embedded == summary.chunks_total
    symbols = set(CodeChunk.objects.using(alias).values_list("symbol", flat=True))
    assert {
        "retry_with_backoff",
        "HeaderParser.parse_header",
        "formatPrice",
        "Cart.total",
    } <= symbols
    retry = CodeChunk.objects.using(alias).get(symbol="retry_with_backoff")
    assert (retry.start_line, retry.end_line, retry.kind) == (5, 14, "function")
    assert retry.embedding is not None and len(retry.embedding) == 384
    net = CodeFile.objects.using(alias).get(relative_path="pkg/net.py")
    assert net.language == "python" and len(net.sha256) == 64
    space = EmbeddingSpace.objects.using(alias).get()
    assert space.dimension == 384
    assert Repository.objects.using(alias).get().last_indexed_at is not None


def test_rerun_touches_only_the_changed_file(project, tmp_path):
    repo = make_repo(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo))
    alias = project_alias(project=project)
    ids_before = dict(CodeChunk.objects.using(alias).values_list("id", "relative_path"))

    unchanged = repository_index(project=project, repo_path=str(repo))
    assert (unchanged.files_indexed, unchanged.files_unchanged) == (0, 3)
    assert unchanged.chunks_written == 0

    time.sleep(0.01)
    (repo / "web.js").write_text(JS_SOURCE + "\nexport const VERSION = 2;\n")
    changed = repository_index(project=project, repo_path=str(repo))

    assert (changed.files_indexed, changed.files_unchanged) == (1, 2)
    after = dict(CodeChunk.objects.using(alias).values_list("id", "relative_path"))
    kept = {i for i, path in ids_before.items() if path != "web.js"}
    assert kept <= set(after)
    assert all(after[i] != "web.js" for i in kept)
    # Functions whose code did not change got their vectors back, not re-embedded.
    assert changed.chunks_embedded < changed.chunks_written


def test_deleted_file_loses_its_chunks_and_renamed_file_reuses_vectors(
    project, tmp_path
):
    repo = make_repo(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo))
    alias = project_alias(project=project)

    (repo / "README.md").unlink()
    (repo / "pkg" / "net.py").rename(repo / "pkg" / "network.py")
    summary = repository_index(project=project, repo_path=str(repo))

    paths = set(CodeChunk.objects.using(alias).values_list("relative_path", flat=True))
    assert paths == {"pkg/network.py", "web.js"}
    assert summary.files_deleted == 2
    assert summary.chunks_embedded == 0
    assert not CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists()


def test_force_reindex_rewrites_every_file(project, tmp_path):
    repo = make_repo(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo))
    summary = repository_index(project=project, repo_path=str(repo), force_reindex=True)
    assert summary.files_indexed == 3
    assert len(chunk_rows(project_alias(project=project))) == summary.chunks_total


def test_hostile_files_are_skipped_and_counted(project, tmp_path, settings):
    settings.INDEX_MAX_FILE_BYTES = 10_000
    repo = make_repo(tmp_path / "repo")
    (repo / "blob.py").write_bytes(b"def f():\n\x00\x01\x02 return 1\n")
    (repo / "latin1.py").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    (repo / "huge.py").write_text("x = 1\n" * 5000)
    (repo / "bundle.min.js").write_text("var a=1;" * 2000)

    summary = repository_index(project=project, repo_path=str(repo))

    reasons = summary.skipped_by_reason
    assert reasons.get("binary") == 1
    assert reasons.get("invalid_utf8") == 1
    assert reasons.get("too_large") == 1
    assert reasons.get("minified", 0) + reasons.get("unsupported_type", 0) >= 1
    assert summary.files_indexed == 3
    assert summary.files_skipped == sum(reasons.values())


def test_bad_paths_are_refused_clearly(project, tmp_path):
    file_path = tmp_path / "a.py"
    file_path.write_text("x = 1\n")
    for path, message in [
        (str(tmp_path / "missing"), "does not exist"),
        (str(file_path), "is a file"),
        ("relative/path", "absolute"),
        ("/etc", "system directory"),
        ("", "required"),
    ]:
        with pytest.raises(RepositoryPathInvalid, match=message):
            repository_index(project=project, repo_path=path)


def test_a_second_run_on_the_same_repository_is_refused(project, tmp_path):
    repo = make_repo(tmp_path / "repo")
    alias = project_alias(project=project)
    import psycopg

    params = connections[alias].get_connection_params()
    for key in ("pool", "cursor_factory", "context"):
        params.pop(key, None)
    key = repository_lock_key(str(repo.resolve()))
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [key])
        with pytest.raises(IndexingInProgress, match="another run"):
            repository_index(project=project, repo_path=str(repo))
        # Closing a connection does not wait for its server process to end
        # and drop the lock; unlocking does.
        other.execute("SELECT pg_advisory_unlock(%s)", [key])
    assert repository_index(project=project, repo_path=str(repo)).files_indexed == 3


def test_vectors_of_another_model_are_refused_unless_reembedding(project, tmp_path):
    repo = make_repo(tmp_path / "repo")
    repository_index(project=project, repo_path=str(repo))
    alias = project_alias(project=project)
    EmbeddingSpace.objects.using(alias).update(model_id="other-model@1")

    with pytest.raises(EmbeddingModelMismatch, match="--reembed"):
        repository_index(project=project, repo_path=str(repo))

    summary = repository_index(project=project, repo_path=str(repo), reembed=True)
    assert summary.chunks_embedded == summary.chunks_total
    assert EmbeddingSpace.objects.using(alias).get().model_id != "other-model@1"


def test_a_project_keeps_its_shipped_weights_until_reembedded(
    project, tmp_path, settings
):
    repo = make_repo(tmp_path / "repo")
    alias = project_alias(project=project)
    settings.MINILM_WEIGHTS = "original"
    repository_index(project=project, repo_path=str(repo))
    original = EmbeddingSpace.objects.using(alias).get().model_id
    settings.MINILM_WEIGHTS = "code"
    (repo / "added.py").write_text("def added_later():\n    return 1\n")

    refreshed = repository_index(project=project, repo_path=str(repo))

    # The new chunk got a vector of the project's weights, not a refusal.
    assert refreshed.embedding_model == original
    assert refreshed.chunks_embedded >= 1
    assert EmbeddingSpace.objects.using(alias).get().model_id == original

    moved = repository_index(project=project, repo_path=str(repo), reembed=True)
    assert moved.embedding_model != original
    assert moved.chunks_embedded == moved.chunks_total
    assert EmbeddingSpace.objects.using(alias).get().model_id == moved.embedding_model


def test_a_run_killed_midway_and_rerun_leaves_exactly_the_right_chunks(
    project_factory, tmp_path
):
    repo = tmp_path / "big"
    repo.mkdir()
    for n in range(300):
        (repo / f"module_{n:03}.py").write_text(
            f"def function_{n}(value):\n    return value * {n}\n\n\n"
            f"class Holder{n}:\n    def get(self):\n        return {n}\n"
        )
    victim, reference = project_factory(), project_factory()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REGISTRY_DATABASE_NAME": connections["default"].settings_dict["NAME"],
    }
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "index",
        str(repo),
        "--project",
        victim.name,
        "--json",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    alias = project_alias(project=victim)
    deadline = time.monotonic() + 120
    # Kill it once some, but not all, work is committed.
    while time.monotonic() < deadline:
        stored = CodeChunk.objects.using(alias).count()
        embedded = (
            CodeChunk.objects.using(alias).filter(embedding__isnull=False).count()
        )
        if stored and embedded < 600:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    assert CodeChunk.objects.using(alias).exists()
    assert CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists()

    summary = repository_index(project=victim, repo_path=str(repo))
    repository_index(project=reference, repo_path=str(repo))

    rows = chunk_rows(alias)
    assert len(rows) == len(set(rows))
    assert rows == chunk_rows(project_alias(project=reference))
    assert CodeFile.objects.using(alias).count() == 300
    assert not CodeChunk.objects.using(alias).filter(embedding__isnull=True).exists()
    assert summary.chunks_total == len(rows)


def test_chunk_vectors_lean_towards_the_symbol_name(settings):
    from indexing.embedders import embedder_get
    from indexing.services import chunk_vectors

    embedder = embedder_get()
    code = "def fetch_invoice(number):\n    return store.load(number)\n"
    settings.SYMBOL_VECTOR_WEIGHT = 0.2
    named, anonymous = chunk_vectors(
        embedder=embedder,
        contents=[code, code],
        symbols=["Billing.fetch_invoice", None],
    )
    plain = embedder.embed_documents([code])[0]
    headed = embedder.embed_documents(["billing fetch invoice\n" + code])[0]
    name = embedder.embed_documents(["billing fetch invoice"])[0]
    assert abs(float(np.linalg.norm(named)) - 1.0) < 1e-5
    # A chunk without a symbol keeps its code vector; a named one is its
    # name's words over its code, mixed with its name's vector.
    assert np.allclose(anonymous, plain, atol=1e-6)
    expected = 0.8 * headed + 0.2 * name
    assert np.allclose(named, expected / np.linalg.norm(expected), atol=1e-5)
    assert float(named @ name) > float(plain @ name)
    assert float(named @ plain) < 0.9999
    settings.SYMBOL_VECTOR_WEIGHT = 0.0
    unweighted = chunk_vectors(
        embedder=embedder, contents=[code], symbols=["fetch_invoice"]
    )
    assert np.allclose(unweighted[0], plain, atol=1e-6)


def test_reembed_with_the_same_model_embeds_every_chunk_again(project, tmp_path):
    repo = make_repo(tmp_path / "repo")
    first = repository_index(project=project, repo_path=str(repo))
    again = repository_index(project=project, repo_path=str(repo), reembed=True)
    assert again.chunks_embedded == first.chunks_total > 0


def test_uses_with_odd_names_and_containers_are_stored_as_written(project):
    from indexing.chunking import NameUses
    from indexing.models import CodeReference
    from indexing.storing import PendingFile, batch_write
    from indexing.walking import WalkedFile

    alias = project_alias(project=project)
    repository = Repository.objects.using(alias).create(path="/repo", name="repo")
    odd = '\\ls "a,b" {c}\tNULL\n\u00e9'
    uses = [
        NameUses("save", [1, 3, 3], [5, 1, 9], "cai", ["Form.save", None, "NULL"]),
        NameUses(odd, [2], [1], "n", [odd]),
        NameUses("Ω", [4], [2], "t", ['a\\b"c']),
    ]
    batch_write(
        alias=alias,
        repository_id=str(repository.id),
        batch=[
            PendingFile(
                walked=WalkedFile(
                    path="/repo/x.py", relative_path="x.py", size=1, mtime=0
                ),
                sha256="0" * 64,
                language="python",
                rows=[],
                existing_id=None,
                reference_rows=[u.row() for u in uses],
            )
        ],
    )
    stored = {
        r.name: NameUses(r.name, r.lines, r.columns, r.kinds, r.containers)
        for r in CodeReference.objects.using(alias).all()
    }
    assert stored == {u.name: u for u in uses}
