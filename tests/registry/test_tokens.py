"""API tokens: the command and the admin create them (shown once), list and revoke them."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from registry.models import ApiToken, Project
from registry.tokens import apitoken_authenticate


def create(*args: str) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apitoken", "create", *args, "--json", stdout=out, stderr=err)
    created = json.loads(out.getvalue())
    return created, created.pop("token")


def test_create_shows_the_token_once_and_stores_only_its_hash(project_factory):
    project = project_factory("tok-one")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "apitoken", "create", "ci", "--project", "tok-one", stdout=out, stderr=err
    )
    plaintext = out.getvalue().strip()
    assert plaintext.startswith("cbmcp_") and len(plaintext) > 40
    assert "shown only now" in err.getvalue()
    token = ApiToken.objects.get(name="ci")
    assert token.digest == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.split("_")[1] == token.prefix
    assert (token.permission, token.all_projects) == ("read", False)
    assert list(token.projects.all()) == [project]
    assert apitoken_authenticate(plaintext=plaintext) == token

    listing = io.StringIO()
    call_command("apitoken", "list", "--json", stdout=listing)
    (shown,) = json.loads(listing.getvalue())
    assert shown["projects"] == ["tok-one"] and shown["revoked_at"] is None
    assert plaintext not in listing.getvalue()
    assert token.digest not in listing.getvalue()

    call_command("apitoken", "revoke", token.prefix, stdout=io.StringIO())
    assert apitoken_authenticate(plaintext=plaintext) is None
    listing = io.StringIO()
    call_command("apitoken", "list", stdout=listing)
    assert "revoked" in listing.getvalue()


def test_every_project_and_each_permission(transactional_db):
    created, plaintext = create("ops", "--all-projects", "--permission", "admin")
    assert created["projects"] is None and created["permission"] == "admin"
    assert apitoken_authenticate(plaintext=plaintext).all_projects


def test_bad_requests_are_refused_with_a_clear_error(project_factory):
    project_factory("tok-two")
    with pytest.raises(CommandError, match="No project named"):
        call_command("apitoken", "create", "x", "--project", "nope")
    with pytest.raises(CommandError, match="name of 1 to 100"):
        call_command("apitoken", "create", " ", "--project", "tok-two")
    with pytest.raises(CommandError, match="No API token with prefix"):
        call_command("apitoken", "revoke", "deadbeef")
    with pytest.raises(CommandError):
        call_command(
            "apitoken", "create", "x", "--project", "tok-two", "--permission", "root"
        )
    assert not ApiToken.objects.exists()


def test_the_admin_creates_a_token_once_and_revokes_it(project_factory):
    project = project_factory("tok-admin")
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.login(username="admin", password="pw")
    response = client.post(
        "/admin/registry/apitoken/add/",
        {"name": "dashboard", "permission": "write", "projects": [str(project.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    token = ApiToken.objects.get(name="dashboard")
    start = text.index("cbmcp_" + token.prefix)
    plaintext = text[start : start + 100].split()[0]
    assert apitoken_authenticate(plaintext=plaintext) == token
    assert list(token.projects.all()) == [project] and token.permission == "write"

    page = client.get(f"/admin/registry/apitoken/{token.pk}/change/").content.decode()
    assert plaintext not in page and token.digest not in page

    refused = client.post(
        "/admin/registry/apitoken/add/", {"name": "empty", "permission": "read"}
    )
    assert "Choose the projects" in refused.content.decode()

    client.post(
        "/admin/registry/apitoken/",
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    assert apitoken_authenticate(plaintext=plaintext) is None


def test_the_project_secret_stays_out_of_the_admin_and_the_api(
    project_factory, settings
):
    settings.DEBUG, settings.API_TOKEN = True, ""
    project = project_factory("tok-secret")
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.login(username="admin", password="pw")
    page = client.get(f"/admin/registry/project/{project.pk}/change/").content.decode()
    assert project.database_secret and project.database_secret not in page
    assert project.database_role in page
    for path in ("/api/projects", "/api/projects/tok-secret"):
        api = Client().get(path)
        assert api.status_code == 200
        assert project.database_secret not in api.content.decode()
    assert project.database_secret not in repr(project.database_login)
    stored = Project.objects.get(pk=project.pk)
    assert stored.database_secret == project.database_secret
