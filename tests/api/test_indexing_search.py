"""Index a small repository through the REST API, follow the job, search it."""

import textwrap
import time
import uuid
from pathlib import Path

import pytest
from django.test import Client

from registry.selectors import project_list
from registry.services import project_delete

TOKEN = "indexing-token"

FILES = {
    "net/retry.py": '''
        import time


        def retry_with_backoff(call, attempts=3):
            """Call again after waiting twice as long each time."""
            delay = 0.1
            for _ in range(attempts):
                try:
                    return call()
                except OSError:
                    time.sleep(delay)
                    delay *= 2
            raise RuntimeError("gave up")
    ''',
    "billing/invoice.py": '''
        class Invoice:
            def total_with_tax(self, rate):
                """Return the amount due including sales tax."""
                return sum(line.price for line in self.lines) * (1 + rate)
    ''',
    "text_tools.py": '''
        def slugify(title):
            """Turn a title into a lowercase URL slug."""
            return "-".join(title.lower().split())
    ''',
}


@pytest.fixture
def api(transactional_db, settings):
    settings.DEBUG = False
    settings.API_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = ""
    yield Client(headers={"Authorization": f"Bearer {TOKEN}"})
    for project in project_list():
        project_delete(project=project)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "shop"
    for relative, source in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return root


def job_wait(api: Client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200
        job = response.json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.1)


@pytest.fixture
def indexed(api, repo) -> dict:
    """Create project `shop` through the API and index `repo` into it."""
    response = api.post(
        "/api/projects", {"name": "shop"}, content_type="application/json"
    )
    assert response.status_code == 201
    started = api.post(
        "/api/projects/shop/index",
        {"repo_path": str(repo)},
        content_type="application/json",
    )
    assert started.status_code == 202, started.content
    job = started.json()
    assert job["status"] == "queued"
    assert job["repo_path"] == str(repo.resolve())
    assert started["Location"] == f"/api/jobs/{job['job_id']}"
    finished = job_wait(api, job["job_id"])
    assert finished["status"] == "completed", finished["error"]
    return finished


def search(api: Client, query: str, **params) -> dict:
    response = api.get("/api/projects/shop/search", {"q": query, **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_index_then_search_through_the_api(api, repo, indexed):
    assert indexed["files_indexed"] == 3
    assert indexed["chunks_embedded"] == indexed["chunks_total"] > 0
    assert indexed["finished_at"] and indexed["error"] is None

    jobs = api.get("/api/projects/shop/jobs").json()
    assert [job["job_id"] for job in jobs] == [indexed["job_id"]]

    repositories = api.get("/api/projects/shop/repositories").json()
    assert len(repositories) == 1
    assert repositories[0]["path"] == str(repo.resolve())
    assert repositories[0]["files"] == 3
    assert repositories[0]["embedded_chunks"] == repositories[0]["chunks"] > 0

    status = api.get("/api/projects/shop").json()["status"]
    assert status["files"] == 3
    assert status["embedded_fraction"] == 1.0
    assert status["embedding_model"] and status["embedding_dimension"] > 0
    assert status["running_jobs"] == []

    found = search(api, "retry a call with exponential backoff")
    assert found["project"]["name"] == "shop"
    assert found["mode"] == "hybrid"
    assert found["embedded_fraction"] == 1.0
    assert found["total_count"] == len(found["results"]) > 0
    top = found["results"][0]
    assert (top["file_path"], top["symbol"]) == ("net/retry.py", "retry_with_backoff")
    assert top["repository"] == str(repo.resolve())
    assert top["language"] == "python" and top["stale"] is False
    assert "def retry_with_backoff" in top["content"]
    assert top["start_line"] <= 4 <= top["end_line"]
    assert top["score"] > 0
    assert set(top) == {
        "file_path",
        "repository",
        "repository_id",
        "start_line",
        "end_line",
        "language",
        "symbol",
        "kind",
        "score",
        "content",
        "context_before",
        "context_after",
        "stale",
        "container",
    }
    assert set(found) == {
        "results",
        "total_count",
        "latency_ms",
        "mode",
        "embedded_fraction",
        "truncated",
        "notes",
        "project",
    }


def test_search_modes_and_filters(api, repo, indexed):
    keyword = search(api, "slugify", mode="keyword", limit=1)
    assert [r["symbol"] for r in keyword["results"]] == ["slugify"]

    semantic = search(api, "sales tax on an invoice", mode="semantic", limit=1)
    assert semantic["results"][0]["file_path"] == "billing/invoice.py"
    assert "def total_with_tax" in semantic["results"][0]["content"]

    in_billing = search(api, "function", directory="billing")
    assert {r["file_path"] for r in in_billing["results"]} == {"billing/invoice.py"}
    by_glob = search(api, "function", path_glob="net/**/*.py")
    assert {r["file_path"] for r in by_glob["results"]} == {"net/retry.py"}
    by_type = search(api, "title slug", file_type="py", language="python")
    assert by_type["results"]
    by_repo = search(api, "retry", repository=str(repo))
    assert by_repo["results"]
    assert search(api, "retry", file_type="js")["results"] == []

    budget = search(api, "retry", max_tokens=50)
    assert budget["truncated"] is True and len(budget["results"]) == 1


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"q": "   "}, 400, "invalid_query"),
        ({"q": "x", "language": "klingon"}, 400, "unknown_language"),
        ({"q": "x", "file_type": "a/b"}, 400, "invalid_query"),
        ({"q": "x", "repository": "/nowhere"}, 404, "unknown_repository"),
        ({}, 422, "validation_error"),
        ({"q": "x", "limit": 0}, 422, "validation_error"),
        ({"q": "x", "limit": 51}, 422, "validation_error"),
        ({"q": "x", "mode": "fuzzy"}, 422, "validation_error"),
        ({"q": "x", "max_tokens": 10}, 422, "validation_error"),
        ({"q": "x", "directory": "a\x00b"}, 422, "validation_error"),
    ],
)
def test_bad_searches_are_refused(api, params, status, code):
    api.post("/api/projects", {"name": "shop"}, content_type="application/json")
    response = api.get("/api/projects/shop/search", params)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_search_of_an_unknown_project_is_404(api):
    response = api.get("/api/projects/nowhere/search", {"q": "x"})
    assert response.status_code == 404
    assert response.json()["code"] == "project_not_found"


def test_bad_index_requests_are_refused(api, tmp_path):
    api.post("/api/projects", {"name": "shop"}, content_type="application/json")
    (tmp_path / "a.py").write_text("x = 1\n")
    for repo_path, message in [
        (str(tmp_path / "missing"), "does not exist"),
        (str(tmp_path / "a.py"), "is a file"),
        ("relative/path", "absolute"),
        ("/etc", "system directory"),
    ]:
        response = api.post(
            "/api/projects/shop/index",
            {"repo_path": repo_path},
            content_type="application/json",
        )
        assert response.status_code == 400, repo_path
        assert response.json()["code"] == "invalid_repository_path"
        assert message in response.json()["detail"]
    assert api.get("/api/projects/shop/jobs").json() == []

    missing = api.post("/api/projects/shop/index", {}, content_type="application/json")
    assert missing.status_code == 422
    ghost = api.post(
        "/api/projects/ghost/index",
        {"repo_path": str(tmp_path)},
        content_type="application/json",
    )
    assert ghost.status_code == 404


def test_unknown_jobs_are_404(api):
    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = api.get(f"/api/jobs/{job_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "job_not_found"


def test_job_list_limit_is_validated(api):
    api.post("/api/projects", {"name": "shop"}, content_type="application/json")
    assert api.get("/api/projects/shop/jobs?limit=0").status_code == 422
    assert api.get("/api/projects/shop/jobs?limit=101").status_code == 422
    assert api.get("/api/projects/shop/jobs?limit=5").json() == []


def test_navigation_through_the_api(api, repo, indexed):
    symbols = api.get("/api/projects/shop/symbols", {"name": "total_with_tax"})
    assert symbols.status_code == 200, symbols.content
    [hit] = symbols.json()["symbols"]
    assert hit["qualified_name"] == "Invoice.total_with_tax"
    assert hit["doc"] == "Return the amount due including sales tax."
    assert symbols.json()["project"]["name"] == "shop"
    uses = api.get("/api/projects/shop/references", {"name": "sleep"}).json()
    assert uses["files"][0]["file_path"] == "net/retry.py"
    assert uses["files"][0]["references"][0]["kind"] == "call"
    outline = api.get("/api/projects/shop/files/billing/invoice.py/outline").json()
    assert [
        (n["name"], [c["name"] for c in n["children"]]) for n in outline["symbols"]
    ] == [("Invoice", ["total_with_tax"])]
    missing = api.get("/api/projects/shop/files/billing/nope.py/outline")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_file"
    bad = api.get("/api/projects/shop/symbols", {"name": "x", "kind": "gadget"})
    assert bad.status_code == 400 and "Unknown kind" in bad.json()["detail"]
    escaping = api.get("/api/projects/shop/files/../../etc/passwd/outline")
    assert escaping.status_code in (400, 404)
    status = api.get("/api/projects/shop").json()["status"]
    assert status["symbols"] >= 4 and status["references"] > 0


def test_grep_through_the_api(api, repo, indexed):
    found = api.get("/api/projects/shop/grep", {"pattern": "time.sleep"})
    assert found.status_code == 200, found.content
    body = found.json()
    assert body["files"][0]["file_path"] == "net/retry.py"
    assert "time.sleep" in body["files"][0]["matches"][0]["text"]
    assert body["indexed"] and body["project"]["name"] == "shop"
    regex = api.get(
        "/api/projects/shop/grep",
        {"pattern": r"def \w+_tax", "regex": "true", "context_lines": 1},
    ).json()
    [match] = regex["files"][0]["matches"]
    assert match["symbol"] == "Invoice.total_with_tax"
    assert len(match["context_before"]) == 1
    bad = api.get("/api/projects/shop/grep", {"pattern": "(x", "regex": "true"})
    assert bad.status_code == 400 and "not a valid regex" in bad.json()["detail"]
    assert (
        api.get(
            "/api/projects/shop/grep", {"pattern": "x", "max_matches": 0}
        ).status_code
        == 422
    )


def test_refresh_updates_named_files_and_refuses_what_it_cannot(api, repo, indexed):
    (repo / "billing" / "refund.py").write_text(
        "def refund_twice(amount):\n    return -2 * amount\n"
    )
    response = api.post(
        "/api/projects/shop/refresh",
        {"paths": ["billing/refund.py", "../escape.py"]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "outside the repository" in response.json()["detail"]
    response = api.post(
        "/api/projects/shop/refresh",
        {"paths": ["billing/refund.py"]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    [repository] = response.json()
    assert (repository["files_indexed"], repository["chunks_embedded"]) == (1, 1)
    found = search(api, "refund_twice", mode="keyword")
    assert found["results"][0]["file_path"] == "billing/refund.py"
    everything = api.post(
        "/api/projects/shop/refresh", {}, content_type="application/json"
    )
    assert everything.json()[0]["files_indexed"] == 0
    unknown = api.post(
        "/api/projects/shop/refresh",
        {"repository": "nope"},
        content_type="application/json",
    )
    assert unknown.status_code == 404
