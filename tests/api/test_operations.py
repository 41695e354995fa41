"""Placing, moving, backing up, restoring and measuring projects over REST."""

import io
import json
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from indexing.models import Repository
from registry.databases import project_database_exists
from registry.selectors import project_find, project_get, project_list
from registry.services import project_alias, project_delete
from tests.operations.conftest import second_server, servers  # noqa: F401

TOKEN = "operations-token"
# Configured but never started: nothing listens on this socket.
ABSENT_SERVER = "postgres://postgres@:5999/%2Fnonexistent-codebase-mcp/postgres"


@pytest.fixture
def api(transactional_db, settings):
    """Return an authorised client; drop every project it made afterwards."""
    settings.DEBUG = False
    settings.API_TOKEN = TOKEN
    yield Client(headers={"Authorization": f"Bearer {TOKEN}"})
    # Read again: a move changes the server a project must be dropped from.
    for project in project_list():
        project_delete(project=project)


def create(api: Client, **body) -> dict:
    response = api.post("/api/projects", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def move(api: Client, reference: str, body: dict):
    return api.post(
        f"/api/projects/{reference}/move", body, content_type="application/json"
    )


def restore(api: Client, data: bytes, **fields):
    upload = SimpleUploadedFile("backup.tar", data, "application/x-tar")
    return api.post("/api/projects/restore", {"file": upload, **fields})


def seed_repository(name: str) -> None:
    alias = project_alias(project=project_get(reference=name))
    Repository.objects.using(alias).create(path="/srv/app", name="app")


def test_create_places_the_project_and_shows_its_server(api):
    created = create(api, name="placed", server="default")
    assert created["server"] == "default"
    assert [p["server"] for p in api.get("/api/projects").json()] == ["default"]
    assert api.get("/api/projects/placed").json()["server"] == "default"

    unknown = api.post(
        "/api/projects",
        {"name": "nowhere", "server": "ghost"},
        content_type="application/json",
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_server"
    assert "PROJECT_DATABASE_SERVERS" in unknown.json()["detail"]
    assert project_find(reference="nowhere") is None


def test_move_refuses_unknown_servers_the_same_server_and_missing_projects(
    api, settings
):
    settings.PROJECT_DATABASE_SERVERS = {"absent": ABSENT_SERVER}
    create(api, name="staying", server="default")
    unknown = move(api, "staying", {"server": "ghost"})
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_server"
    same = move(api, "staying", {"server": "default"})
    assert same.status_code == 409
    assert same.json()["code"] == "operation_refused"
    assert "already on server 'default'" in same.json()["detail"]
    assert move(api, "missing", {"server": "default"}).status_code == 404
    assert move(api, "staying", {}).status_code == 422
    down = move(api, "staying", {"server": "absent"})
    assert down.status_code == 503
    assert down.json()["code"] == "operation_failed"
    assert "still served from 'default'" in down.json()["detail"]
    assert project_get(reference="staying").server == "default"


def test_move_copies_the_project_to_the_second_server(servers, api):  # noqa: F811
    created = create(api, name="travelling", server="default")
    seed_repository("travelling")
    response = move(api, "travelling", {"server": "second"})
    assert response.status_code == 200, response.content
    report = response.json()
    assert (report["source"], report["target"]) == ("default", "second")
    assert report["old_copy_dropped"] is True and report["warnings"] == []
    assert report["tables"]["repositories"] == 1
    detail = api.get("/api/projects/travelling").json()
    assert detail["server"] == "second"
    assert [repo["path"] for repo in detail["status"]["repositories"]] == ["/srv/app"]
    database_name = created["database_name"]
    assert project_database_exists(database_name=database_name, server="second")
    assert not project_database_exists(database_name=database_name)


def test_backup_downloads_a_tar_that_restores_as_a_copy(api):
    create(api, name="origin", description="the original", metadata={"team": "a"})
    seed_repository("origin")
    response = api.get("/api/projects/origin/backup")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="origin-')
    assert disposition.endswith('.backup.tar"')
    data = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == ["manifest.json", "database.dump"]
        manifest = json.load(archive.extractfile("manifest.json"))
    assert manifest["project"]["name"] == "origin"
    assert api.get("/api/projects/missing/backup").status_code == 404

    copied = restore(api, data, name="origin-copy")
    assert copied.status_code == 201, copied.content
    body = copied.json()
    assert body["project"]["name"] == "origin-copy"
    assert body["project"]["server"] == "default"
    assert body["project"]["description"] == "the original"
    assert body["project"]["metadata"] == {"team": "a"}
    assert (body["replaced"], body["source_project"]) == (False, "origin")
    assert body["tables"]["repositories"] == 1
    status = api.get("/api/projects/origin-copy").json()["status"]
    assert [repo["path"] for repo in status["repositories"]] == ["/srv/app"]

    taken = restore(api, data)
    assert taken.status_code == 409
    assert taken.json()["code"] == "operation_refused"
    replaced = restore(api, data, name="origin-copy", replace="true")
    assert replaced.status_code == 201, replaced.content
    assert replaced.json()["replaced"] is True
    before, after = body["project"], replaced.json()["project"]
    assert after["id"] == before["id"]
    assert after["database_name"] != before["database_name"]

    elsewhere = restore(api, data, name="origin-3", server="ghost")
    assert elsewhere.status_code == 400
    assert elsewhere.json()["code"] == "unknown_server"
    garbage = restore(api, b"not a tar file")
    assert garbage.status_code == 400
    assert garbage.json()["code"] == "backup_invalid"
    # The message names the file that was sent, not where the server kept it.
    assert garbage.json()["detail"].startswith("uploaded file 'backup.tar' ")
    assert "cbmcp-upload" not in garbage.json()["detail"]
    assert api.post("/api/projects/restore", {"name": "x"}).status_code == 422
    assert sorted(p.name for p in project_list()) == ["origin", "origin-copy"]


def test_metrics_report_size_content_and_searches(api):
    create(api, name="measured")
    seed_repository("measured")
    response = api.get("/api/projects/measured/metrics")
    assert response.status_code == 200, response.content
    metrics = response.json()
    assert (metrics["name"], metrics["server"]) == ("measured", "default")
    assert metrics["repositories"] == 1 and metrics["chunks"] == 0
    assert metrics["size_bytes"] > 0
    assert metrics["queries_served"] == 0 and metrics["latency_samples"] == 0
    assert metrics["search_latency_p50_ms"] is None
    assert "code_chunks" in {table["name"] for table in metrics["tables"]}
    assert api.get("/api/projects/missing/metrics").status_code == 404


def test_a_project_named_restore_is_reachable_by_name(api):
    create(api, name="restore", description="unlucky name")
    assert api.get("/api/projects/restore").json()["description"] == "unlucky name"
    patched = api.patch(
        "/api/projects/restore",
        {"description": "still here"},
        content_type="application/json",
    )
    assert patched.status_code == 200 and patched.json()["description"] == "still here"
    assert api.delete("/api/projects/restore").status_code == 400
    assert api.delete("/api/projects/restore?confirm=true").status_code == 204
    assert api.get("/api/projects/restore").status_code == 404
    # The restore route itself still answers POST.
    assert api.post("/api/projects/restore", {"name": "x"}).status_code == 422
