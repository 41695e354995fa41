"""Settings read from the environment: a value that is not what it must be is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings_import(**variables: str) -> subprocess.CompletedProcess:
    script = (
        "import config.settings as s; "
        "print(s.SEARCH_RERANK, s.SEARCH_RERANK_DEPTH, s.FEDERATED_PROJECT_TIMEOUT_SECONDS)"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("SEARCH_RERANK_DEPTH", "many", "is not a whole number: give a whole number"),
        ("SEARCH_RERANK_DEPTH", "", "is not a whole number"),
        ("FEDERATED_PROJECT_TIMEOUT_SECONDS", "1.5x", "is not a number"),
        ("FEDERATED_PROJECT_TIMEOUT_SECONDS", "nan", "is not a finite number"),
        ("SEARCH_RERANK", "maybe", "is not true or false (1/0, yes/no, on/off)"),
    ],
)
def test_a_misread_value_is_refused_by_name_with_what_to_give(variable, value, message):
    done = _settings_import(**{variable: value})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"ImproperlyConfigured: {variable}={value!r} {message}" in last
    assert "or unset it for the default" in last


def test_good_values_are_read_as_before():
    done = _settings_import(
        SEARCH_RERANK="Off",
        SEARCH_RERANK_DEPTH=" 30 ",
        FEDERATED_PROJECT_TIMEOUT_SECONDS="2.5",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "30", "2.5"]
    unset = {
        name: value
        for name, value in os.environ.items()
        if name
        not in (
            "SEARCH_RERANK",
            "SEARCH_RERANK_DEPTH",
            "FEDERATED_PROJECT_TIMEOUT_SECONDS",
        )
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import config.settings as s; print(s.SEARCH_RERANK_DEPTH)",
        ],
        env=unset,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.stdout.split() == ["40"]


@pytest.mark.parametrize("value", ["0", "1001"])
def test_an_hnsw_breadth_out_of_range_is_refused_by_name(value):
    done = _settings_import(SEARCH_HNSW_EF_SEARCH=value)
    assert done.returncode != 0
    assert (
        f"SEARCH_HNSW_EF_SEARCH={value} is out of range; use 1 to 1000" in done.stderr
    )


def test_weights_that_do_not_ship_are_refused_with_the_choices():
    done = _settings_import(MINILM_WEIGHTS="tuned")
    assert done.returncode != 0
    assert (
        "MINILM_WEIGHTS='tuned' is not shipped weights; use code (the default) "
        "or original." in done.stderr
    )


def _weights_read(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.MINILM_WEIGHTS)"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_new_projects_embed_with_the_code_weights_by_default():
    unset = {k: v for k, v in os.environ.items() if k != "MINILM_WEIGHTS"}
    assert _weights_read(unset) == ["code"]
    assert _weights_read({**unset, "MINILM_WEIGHTS": " Original "}) == ["original"]
