"""The embedding phase reports its speed and the time left, everywhere a job shows.

The embedder is the real model behind a fixed pause per text: a stand-in for
a slower machine, so the phase lasts long enough to be watched and its true
remaining time is known afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from django.db import connections

from indexing.embedders import embedder_get
from indexing.jobs import index_job_create, index_job_run
from indexing.services import IndexProgress, repository_index
from mcp_bridge.renderings import job_render
from mcp_bridge.schemas import JobStatus
from tests.api.test_indexing_search import api  # noqa: F401 (fixture)
from tests.celery.test_worker import big_repository

FILES = 240
PAUSE = 0.004  # seconds per text embedded; each chunk is two texts (code, name)


class ThrottledEmbedder:
    """The configured embedder, slowed by a fixed pause per text."""

    def __init__(self, inner, seconds_per_text: float) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.seconds_per_text = seconds_per_text

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        time.sleep(self.seconds_per_text * len(texts))
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


@pytest.fixture
def many_functions(tmp_path) -> Path:
    return big_repository(tmp_path / "repo", files=FILES)


def eta_checks(samples: list[tuple[float, int, int, float, float | None]], end: float):
    """Assert the ETAs are present, near the truth and never jump up much."""
    timed = [s for s in samples if s[4] is not None and s[1] < s[2]]
    assert len(timed) >= 3, samples
    for at, _done, _total, rate, eta in timed:
        assert rate > 0 and eta > 0
        actual = end - at
        # Sane: within a factor of 3 of what happened (plus a second).
        assert actual / 3 - 1 <= eta <= actual * 3 + 1, (eta, actual, samples)
    for before, after in zip(timed, timed[1:], strict=False):
        # Monotone within noise: never up by more than a second or 30 %.
        assert after[4] <= before[4] + max(1.0, 0.3 * before[4]), samples


def test_the_service_reports_speed_and_a_falling_eta(
    project_factory, many_functions, settings
):
    settings.INDEX_EMBED_BATCH = 16
    project = project_factory()
    samples: list[tuple[float, int, int, float, float | None]] = []
    phases: list[str] = []

    def watch(progress: IndexProgress) -> None:
        phases.append(progress.phase)
        if progress.phase == "embedding":
            samples.append(
                (
                    time.monotonic(),
                    progress.chunks_embedded,
                    progress.chunks_to_embed,
                    progress.embed_rate,
                    progress.eta_seconds,
                )
            )

    summary = repository_index(
        project=project,
        repo_path=str(many_functions),
        embedder=ThrottledEmbedder(embedder_get(), PAUSE),
        progress=watch,
    )
    end = samples[-1][0]
    assert summary.chunks_embedded == summary.chunks_to_embed == FILES
    assert phases[-1] == "completed" and summary.eta_seconds == 0
    assert samples[0][4] is None  # nothing to go by before a batch ends
    eta_checks(samples, end)
    # The reported speed is the speed seen since the first batch (which also
    # loaded the model) ended.
    first = next(s for s in samples if s[1] > 0)
    overall = (FILES - first[1]) / (end - first[0])
    assert overall / 2 <= summary.embed_rate <= overall * 2


def test_a_job_shows_phase_speed_and_eta_over_rest_and_mcp(
    api,  # noqa: F811
    many_functions,
    settings,
):
    from registry.services import project_create

    settings.INDEX_EMBED_BATCH = 16
    project = project_create(name="eta-job")
    job = index_job_create(project=project, repo_path=str(many_functions))

    def run() -> None:
        try:
            index_job_run(
                job_id=job.id, embedder=ThrottledEmbedder(embedder_get(), PAUSE)
            )
        finally:
            connections.close_all()

    runner = threading.Thread(target=run)
    runner.start()
    seen: list[dict] = []
    samples = []
    try:
        while runner.is_alive():
            shown = api.get(f"/api/jobs/{job.id}").json()
            if shown["phase"] == "embedding":
                seen.append(shown)
                samples.append(
                    (
                        time.monotonic(),
                        shown["chunks_embedded"],
                        shown["chunks_to_embed"],
                        shown["embed_rate"],
                        shown["eta_seconds"],
                    )
                )
            time.sleep(0.1)
    finally:
        runner.join()
    end = time.monotonic()
    done = api.get(f"/api/jobs/{job.id}").json()
    assert done["status"] == "completed", done["error"]
    assert done["chunks_to_embed"] == done["chunks_embedded"] == FILES
    assert done["eta_seconds"] == 0 and done["embed_rate"] > 0
    assert sum(done["embedded_by"].values()) == FILES
    # The row is written at most twice a second; the last write may be late.
    eta_checks(samples, end)

    midway = next(s for s in seen if s["eta_seconds"])
    text = job_render(JobStatus(**midway))
    assert f"embedding {midway['chunks_embedded']} of {FILES} chunks" in text
    assert f"{midway['embed_rate']:.1f} chunks/s" in text and " left" in text
