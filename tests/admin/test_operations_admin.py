"""Placing, moving, backing up and restoring projects from the admin."""

import io
import json
import tarfile

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from operations.backup import project_backup
from registry.databases import project_database_exists
from registry.models import Project
from registry.selectors import project_find, project_list
from registry.services import project_delete

CHANGELIST = "/admin/registry/project/"
RESTORE = "/admin/registry/project/restore/"
# Configured but never started: nothing listens on this socket.
ABSENT_SERVER = "postgres://postgres@:5999/%2Fnonexistent-codebase-mcp/postgres"


@pytest.fixture
def admin_client(client, transactional_db):
    """Log a superuser in; drop every project left afterwards."""
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.login(username="admin", password="pw")
    yield client
    for project in project_list():
        project_delete(project=project)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_list_add_page_and_actions_offer_the_servers(admin_client, settings):
    settings.PROJECT_DATABASE_SERVERS = {"ghost": ABSENT_SERVER}
    add_page = admin_client.get(f"{CHANGELIST}add/").content.decode()
    assert 'name="placement"' in add_page
    assert '<option value="ghost">ghost</option>' in add_page
    added = admin_client.post(
        f"{CHANGELIST}add/",
        {"name": "placed", "description": "", "metadata": "{}", "placement": "default"},
    )
    assert added.status_code == 302, added.content[:2000]
    placed = Project.objects.get(name="placed")
    assert placed.server == "default"
    assert project_database_exists(database_name=placed.database_name)

    listing = admin_client.get(CHANGELIST).content.decode()
    assert "column-server" in listing
    assert f'href="{RESTORE}"' in listing
    assert 'value="move_to_ghost"' in listing and 'value="move_to_default"' in listing
    assert 'value="backup_download"' in listing
    change_page = admin_client.get(f"{CHANGELIST}{placed.pk}/change/").content
    assert b'name="placement"' not in change_page


def test_move_actions_report_problems_as_messages(
    admin_client, settings, project_factory
):
    settings.PROJECT_DATABASE_SERVERS = {"ghost": ABSENT_SERVER}
    project = project_factory("staying")

    def act(action: str) -> list[str]:
        response = admin_client.post(
            CHANGELIST,
            {"action": action, "_selected_action": [str(project.pk)], "index": "0"},
            follow=True,
        )
        assert response.status_code == 200
        return messages_of(response)

    (absent,) = act("move_to_ghost")
    assert "still served from 'default'" in absent
    assert "'ghost'" in absent
    (same,) = act("move_to_default")
    assert "already on server 'default'" in same
    assert act("move_to_nowhere") == ["No action selected."]
    assert project_find(reference="staying").server == "default"


def test_backup_action_downloads_a_tar_with_its_manifest(admin_client, project_factory):
    project = project_factory("backed-up")
    other = project_factory("other")
    response = admin_client.post(
        CHANGELIST, {"action": "backup_download", "_selected_action": [project.pk]}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    assert 'filename="backed_up-' in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == ["manifest.json", "database.dump"]
        manifest = json.load(archive.extractfile("manifest.json"))
    assert manifest["project"]["id"] == str(project.pk)

    both = admin_client.post(
        CHANGELIST,
        {"action": "backup_download", "_selected_action": [project.pk, other.pk]},
        follow=True,
    )
    assert messages_of(both) == ["Select exactly one project to back up."]


def test_restore_page_restores_a_copy_under_a_new_name(
    admin_client, project_factory, tmp_path
):
    original = project_factory("original", description="kept")
    archive = tmp_path / "original.tar"
    project_backup(project=original, output=archive)
    page = admin_client.get(RESTORE)
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content

    def upload(data: bytes, **fields):
        backup = SimpleUploadedFile("original.tar", data, "application/x-tar")
        return admin_client.post(
            RESTORE, {"backup": backup, "server": "", **fields}, follow=True
        )

    restored = upload(archive.read_bytes(), name="duplicate")
    copy = project_find(reference="duplicate")
    assert copy is not None and copy.pk != original.pk
    assert restored.redirect_chain == [(f"{CHANGELIST}{copy.pk}/change/", 302)]
    assert messages_of(restored) == [
        "Restored project 'duplicate' on server 'default'."
    ]
    assert copy.description == "kept"
    assert project_database_exists(database_name=copy.database_name)

    taken = upload(archive.read_bytes())
    assert taken.redirect_chain == []
    assert "already exists" in messages_of(taken)[0]
    garbage = upload(b"not a backup", name="garbage")
    assert "cannot be read as a project backup" in messages_of(garbage)[0]
    assert project_find(reference="garbage") is None
