"""The project admin through Django's test client, on real project databases.

Jobs started from the admin run in a background thread of this process (no
broker), so their rows are committed and polled like any other client would.
"""

from __future__ import annotations

import re
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client

from indexing.jobs import index_job_create, index_job_run
from indexing.models import IndexJob
from registry.databases import project_database_drop
from registry.models import Project

NET_MODULE = textwrap.dedent('''
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
    ''')
WEB_MODULE = textwrap.dedent("""
    export function formatPrice(amount, currency) {
      return new Intl.NumberFormat("en", { currency }).format(amount);
    }
    """)
FINISHED = (IndexJob.Status.COMPLETED, IndexJob.Status.FAILED)


def small_repository(root: Path) -> Path:
    """Write a three-file repository and return its root."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "net.py").write_text(NET_MODULE)
    (root / "web.js").write_text(WEB_MODULE)
    (root / "README.md").write_text("# Demo\n\nA tiny repository for tests.\n")
    return root


def project_url(project: Project, view: str = "change") -> str:
    return f"/admin/registry/project/{project.pk}/{view}/"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def job_wait(job_id: uuid.UUID, timeout: float = 60.0) -> IndexJob:
    """Poll a job until it is completed or failed."""
    deadline = time.monotonic() + timeout
    while True:
        job = IndexJob.objects.using("default").get(id=job_id)
        if job.status in FINISHED:
            return job
        assert time.monotonic() < deadline, f"job stuck at {job.status}/{job.phase}"
        time.sleep(0.05)


@pytest.fixture
def admin_client(client: Client, transactional_db, settings) -> Client:
    # Jobs run in threads of this process, whatever the environment says.
    settings.CELERY_BROKER_URL = ""
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.login(username="admin", password="pw")
    return client


@pytest.fixture
def repo(tmp_path) -> Path:
    return small_repository(tmp_path / "repo")


@pytest.fixture
def indexed(project_factory, repo) -> tuple[Project, IndexJob]:
    """Return a project with `repo` indexed by a finished job."""
    project = project_factory()
    job = index_job_run(
        job_id=index_job_create(project=project, repo_path=str(repo)).id
    )
    assert job.status == IndexJob.Status.COMPLETED, job.error
    return project, job


def test_project_list_shows_size_repositories_chunks_last_indexed_and_model(
    admin_client, indexed
):
    project, job = indexed
    body = admin_client.get("/admin/registry/project/").content.decode()

    for column in (
        "name", "database_name", "size", "repositories", "chunks",
        "last_indexed", "embedding_model",
    ):  # fmt: skip
        assert re.search(rf'scope="col" class="[^"]*\bcolumn-{column}\b', body), column
    assert f'<td class="field-database_name">{project.database_name}</td>' in body
    assert '<td class="field-repositories">1</td>' in body
    assert f'<td class="field-chunks">{job.chunks_total}</td>' in body
    assert re.search(r'<td class="field-size">[\d.]+\xa0(KB|MB)</td>', body)
    assert re.search(r'<td class="field-last_indexed">\d{4}-\d\d-\d\d \d\d:', body)
    assert re.search(r'<td class="field-embedding_model">minilm[^<]+</td>', body)


def test_project_page_shows_repositories_jobs_and_actions(admin_client, indexed, repo):
    project, job = indexed
    response = admin_client.get(project_url(project))
    assert response.status_code == 200
    body = response.content.decode()

    assert '<span id="count-repositories">1</span>' in body
    assert '<span id="count-files">3</span>' in body
    assert f'<span id="count-chunks">{job.chunks_total}</span>' in body
    row = re.search(r'<tr class="repository">(.*?)</tr>', body, re.S).group(1)
    assert f"<td>{repo.resolve()}</td>" in row
    assert '<td class="files">3</td>' in row
    assert f'<td class="chunks">{job.chunks_total}</td>' in row
    assert 'value="Reindex"' in row and 'name="force_reindex" value="on"' in row
    assert '<tr class="job job-completed">' in body
    assert f"/admin/indexing/indexjob/{job.pk}/change/" in body
    assert f'action="{project_url(project, "index")}"' in body
    assert f'action="{project_url(project, "search")}"' in body


def test_index_form_enqueues_a_job_that_completes(admin_client, project_factory, repo):
    project = project_factory()
    response = admin_client.post(
        project_url(project, "index"), {"repo_path": str(repo)}, follow=True
    )
    assert response.redirect_chain == [(project_url(project) + "#project-jobs", 302)]
    [message] = messages_of(response)
    assert f"Indexing {repo.resolve()} in the background" in message

    job = job_wait(IndexJob.objects.using("default").get(project=project).id)
    assert job.status == IndexJob.Status.COMPLETED, job.error
    assert (job.files_indexed, job.force_reindex) == (3, False)
    body = admin_client.get(project_url(project)).content.decode()
    assert '<span id="count-files">3</span>' in body
    assert '<tr class="job job-completed">' in body

    # The Reindex button of the repository row posts the same form with force.
    response = admin_client.post(
        project_url(project, "index"),
        {"repo_path": str(repo.resolve()), "force_reindex": "on"},
        follow=True,
    )
    assert "Reindexing" in messages_of(response)[0]
    again = job_wait(
        IndexJob.objects.using("default").get(project=project, force_reindex=True).id
    )
    assert again.status == IndexJob.Status.COMPLETED, again.error
    assert (again.files_indexed, again.files_unchanged) == (3, 0)


def test_index_form_shows_bad_paths_as_messages(admin_client, project_factory):
    project = project_factory()
    for path, expected in [
        ("relative/path", "is relative; give the absolute path"),
        ("/tmp/codebase-mcp-no-such-dir", "does not exist; check the path"),
        ("/etc", "a system directory"),
        ("", "Nothing was indexed. Repository path: This field is required."),
    ]:
        response = admin_client.post(
            project_url(project, "index"), {"repo_path": path}, follow=True
        )
        assert response.status_code == 200
        assert response.redirect_chain[-1][0].startswith(project_url(project))
        assert any(expected in message for message in messages_of(response)), path
        assert expected.split(";")[0] in response.content.decode()
    assert not IndexJob.objects.using("default").filter(project=project).exists()


def test_search_box_shows_a_known_function(admin_client, indexed):
    project, _ = indexed
    response = admin_client.get(
        project_url(project, "search"), {"q": "retry a call with backoff"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    results = body[body.index('id="search-results"') :]
    first = re.search(r'<div class="search-result">(.*?)</div>', results, re.S)
    assert "pkg/net.py:" in first.group(1)
    assert '<span class="symbol">retry_with_backoff</span>' in first.group(1)
    assert 'value="retry a call with backoff"' in body

    keyword = admin_client.get(
        project_url(project, "search"), {"q": "formatPrice", "mode": "keyword"}
    )
    assert '<span class="symbol">formatPrice</span>' in keyword.content.decode()


def test_search_errors_are_messages_not_server_errors(admin_client, indexed, settings):
    project, _ = indexed
    url = project_url(project, "search")

    empty = admin_client.get(url)
    assert empty.status_code == 200 and "search-results" not in empty.content.decode()
    too_long = admin_client.get(url, {"q": "x" * 3000})
    assert too_long.status_code == 200
    assert "keep it under" in messages_of(too_long)[0]
    bad_mode = admin_client.get(url, {"q": "retry", "mode": "psychic"})
    assert bad_mode.status_code == 200
    assert "Nothing was searched" in messages_of(bad_mode)[0]

    # A missing database is noticed when the pool gives up waiting for it.
    settings.POOL_TIMEOUT = 0.5
    project_database_drop(database_name=project.database_name)
    gone = admin_client.get(url, {"q": "retry"})
    assert gone.status_code == 200
    assert "cannot be reached" in messages_of(gone)[0]
    assert "restoreproject" in messages_of(gone)[0]
    page = admin_client.get(project_url(project))
    assert page.status_code == 200
    assert "could not be read" in page.content.decode()


def test_unknown_projects_and_wrong_methods_are_refused_cleanly(admin_client):
    missing = uuid.uuid4()
    for view in ("search", "index"):
        response = admin_client.post(f"/admin/registry/project/{missing}/{view}/")
        assert response.status_code == 302
        assert response.url == "/admin/"
    response = admin_client.get(f"/admin/registry/project/{uuid.uuid4()}/index/")
    assert response.status_code == 405


def test_a_view_only_user_can_search_but_not_index(client, indexed, repo, settings):
    settings.CELERY_BROKER_URL = ""
    project, _ = indexed
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_project"))
    client.login(username="viewer", password="pw")

    page = client.get(project_url(project)).content.decode()
    assert 'id="project-search"' in page
    assert 'id="project-index"' not in page and 'value="Reindex"' not in page
    refused = client.post(project_url(project, "index"), {"repo_path": str(repo)})
    assert refused.status_code == 403
    assert client.get(project_url(project, "search"), {"q": "retry"}).status_code == 200


def test_index_job_admin_lists_jobs_read_only(admin_client, indexed, rf):
    project, job = indexed
    failed = index_job_create(project=project, repo_path=str(Path(job.repo_path)))
    IndexJob.objects.using("default").filter(id=failed.id).update(
        status=IndexJob.Status.FAILED, error="The worker stopped sending heartbeats"
    )

    listing = admin_client.get("/admin/indexing/indexjob/")
    assert listing.status_code == 200
    body = listing.content.decode()
    for column in (
        "project", "repo_path", "status", "phase", "files", "chunks_embedded",
        "created_at", "error_preview",
    ):  # fmt: skip
        assert re.search(rf'scope="col" class="[^"]*\bcolumn-{column}\b', body), column
    assert '<td class="field-files">3/3</td>' in body
    assert "The worker stopped sending heartbeats" in body
    assert 'name="action"' not in body  # no bulk delete

    detail = admin_client.get(f"/admin/indexing/indexjob/{job.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.get("/admin/indexing/indexjob/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/indexing/indexjob/{job.pk}/change/", {}).status_code
        == 403
    )
    assert (
        admin_client.post(
            f"/admin/indexing/indexjob/{job.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert IndexJob.objects.using("default").filter(project=project).count() == 2

    job_admin = admin.site._registry[IndexJob]
    request = rf.get("/")
    request.user = User.objects.get(username="admin")
    assert not job_admin.has_add_permission(request)
    assert not job_admin.has_change_permission(request, job)
    assert not job_admin.has_delete_permission(request, job)
    assert job_admin.has_view_permission(request, job)
