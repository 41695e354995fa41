"""The project admin: create provisions, detail shows counts, delete drops."""

import pytest
from django.contrib.auth.models import User

from indexing.models import CodeChunk, CodeFile, Repository
from registry.databases import project_database_exists
from registry.models import Project
from registry.services import project_alias


@pytest.fixture
def admin_client(client, transactional_db):
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.login(username="admin", password="pw")
    return client


def _seed(project: Project) -> None:
    alias = project_alias(project=project)
    repo = Repository.objects.using(alias).create(path="/srv/app", name="app")
    for n in range(2):
        code_file = CodeFile.objects.using(alias).create(
            repository=repo,
            relative_path=f"m{n}.py",
            language="python",
            size_bytes=10,
            sha256="0" * 64,
            mtime=0.0,
            indexed_at="2026-01-01T00:00Z",
        )
        CodeChunk.objects.using(alias).create(
            repository=repo,
            file=code_file,
            relative_path=code_file.relative_path,
            language="python",
            kind="function",
            symbol=f"f{n}",
            start_line=1,
            end_line=2,
            content=f"def f{n}(): pass",
            content_sha256=str(n) * 64,
        )


def test_admin_create_detail_delete(admin_client):
    response = admin_client.post(
        "/admin/registry/project/add/",
        {"name": "from-admin", "description": "made in admin", "metadata": "{}"},
    )
    assert response.status_code == 302, response.content[:2000]
    project = Project.objects.get(name="from-admin")
    assert project_database_exists(database_name=project.database_name)

    listing = admin_client.get("/admin/registry/project/")
    assert listing.status_code == 200
    assert project.database_name.encode() in listing.content

    _seed(project)
    detail = admin_client.get(f"/admin/registry/project/{project.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert '<span id="count-repositories">1</span>' in body
    assert '<span id="count-files">2</span>' in body
    assert '<span id="count-chunks">2</span>' in body

    confirm = admin_client.get(f"/admin/registry/project/{project.pk}/delete/")
    assert confirm.status_code == 200
    deleted = admin_client.post(
        f"/admin/registry/project/{project.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not project_database_exists(database_name=project.database_name)


def test_admin_refuses_bad_and_duplicate_names(admin_client):
    admin_client.post(
        "/admin/registry/project/add/", {"name": "taken", "metadata": "{}"}
    )
    for name, message in [("", "required"), ("taken", "already exists")]:
        response = admin_client.post(
            "/admin/registry/project/add/", {"name": name, "metadata": "{}"}
        )
        assert response.status_code == 200
        assert message in response.content.decode()
    assert Project.objects.filter(name="taken").count() == 1
    Project.objects.get(name="taken")
    from registry.services import project_delete

    project_delete(project=Project.objects.get(name="taken"))
