"""Search, symbols and grep over several projects through the REST API."""

import textwrap

import pytest
from django.test import Client

from indexing.services import repository_index
from registry.selectors import MAX_PROJECTS
from tests.operations.conftest import FILES

TOKEN = "federation-token"

# A service and its client library, as two projects.
SERVICE = {"api/retry.py": FILES["src/net/retry.py"]}
CLIENT = {"client/headers.py": FILES["src/net/headers.py"]}


def _write(root, files):
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return root


@pytest.fixture
def two(project_factory, tmp_path, settings):
    settings.DEBUG = False
    settings.API_TOKEN = TOKEN
    service = project_factory(name="fed-service")
    client = project_factory(name="fed-client")
    repository_index(project=service, repo_path=str(_write(tmp_path / "s", SERVICE)))
    repository_index(project=client, repo_path=str(_write(tmp_path / "c", CLIENT)))
    return Client(headers={"Authorization": f"Bearer {TOKEN}"})


def test_search_symbols_and_grep_over_two_projects(two):
    found = two.get(
        "/api/search",
        {"projects": "fed-service,fed-client", "q": "try again after waiting"},
    )
    assert found.status_code == 200, found.content
    body = found.json()
    assert body["results"][0]["project"] == "fed-service"
    assert body["results"][0]["symbol"] == "retry_with_backoff"
    assert [p["name"] for p in body["projects"]] == ["fed-service", "fed-client"]
    assert {p["status"] for p in body["projects"]} == {"ok"}
    # Repeated parameters work as well as commas, and duplicates count once.
    repeated = two.get(
        "/api/search?projects=fed-client&projects=fed-service&projects=fed-client"
        "&q=parseHTTPHeader&mode=keyword"
    )
    assert repeated.status_code == 200, repeated.content
    assert [p["name"] for p in repeated.json()["projects"]] == [
        "fed-client",
        "fed-service",
    ]
    assert repeated.json()["results"][0]["project"] == "fed-client"

    symbols = two.get(
        "/api/symbols",
        {"projects": "fed-service,fed-client", "name": "parseHTTPHeader"},
    ).json()
    assert [(s["project"], s["name"]) for s in symbols["symbols"]] == [
        ("fed-client", "parseHTTPHeader")
    ]
    grep = two.get(
        "/api/grep", {"projects": "fed-service,fed-client", "pattern": "def "}
    ).json()
    assert [(f["project"], f["file_path"]) for f in grep["files"]] == [
        ("fed-service", "api/retry.py"),
        ("fed-client", "client/headers.py"),
    ]
    assert grep["matches"] == 2


def test_bad_project_lists_are_clear_errors_that_reveal_nothing(two):
    unknown = two.get("/api/search", {"projects": "fed-service,nope", "q": "x"})
    assert unknown.status_code == 404
    assert "'nope'" in unknown.json()["detail"]
    assert "fed-service" not in unknown.json()["detail"]
    sql = two.get("/api/search", {"projects": "fed-service,' OR '1'='1", "q": "x"})
    assert sql.status_code == 404
    many = ",".join(f"p{n}" for n in range(1000))
    too_many = two.get("/api/search", {"projects": many, "q": "x"})
    assert too_many.status_code == 400
    assert f"at most {MAX_PROJECTS}" in too_many.json()["detail"]
    assert two.get("/api/search", {"q": "x"}).status_code == 422
    empty = two.get("/api/grep", {"projects": ",", "pattern": "def"})
    assert empty.status_code == 400
    assert (
        two.get("/api/search", {"projects": "fed-service", "q": " "}).status_code == 400
    )
