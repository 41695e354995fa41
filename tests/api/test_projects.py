"""Project CRUD through the REST API, against real project databases."""

import uuid

import pytest
from django.test import Client

from registry.databases import project_database_exists
from registry.selectors import project_find, project_list
from registry.services import project_delete

TOKEN = "projects-token"


@pytest.fixture
def api(transactional_db, settings):
    """Return an authorised client; drop every project it made afterwards."""
    settings.DEBUG = False
    settings.API_TOKEN = TOKEN
    yield Client(headers={"Authorization": f"Bearer {TOKEN}"})
    for project in project_list():
        project_delete(project=project)


def create(api: Client, **body) -> dict:
    response = api.post("/api/projects", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_list_get_round_trip(api):
    created = create(
        api, name="billing", description="Payments", metadata={"team": "core"}
    )
    assert created["name"] == "billing"
    assert created["description"] == "Payments"
    assert created["metadata"] == {"team": "core"}
    assert created["database_name"].startswith("cb_proj_billing_")
    assert project_database_exists(database_name=created["database_name"])
    uuid.UUID(created["id"])

    listed = api.get("/api/projects").json()
    assert [p["name"] for p in listed] == ["billing"]
    assert listed[0]["id"] == created["id"]

    for reference in ("billing", created["id"]):
        detail = api.get(f"/api/projects/{reference}")
        assert detail.status_code == 200
        body = detail.json()
        assert body["id"] == created["id"]
        status = body["status"]
        assert status["files"] == status["chunks"] == status["embedded_chunks"] == 0
        assert status["repositories"] == [] and status["running_jobs"] == []
        assert status["size_bytes"] > 0


def test_patch_changes_only_what_is_sent(api):
    created = create(api, name="old-name", description="keep me")
    response = api.patch(
        "/api/projects/old-name",
        {"name": "new-name", "metadata": {"a": [1, 2]}},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"]) == ("new-name", "keep me")
    assert body["metadata"] == {"a": [1, 2]}
    assert body["database_name"] == created["database_name"]
    assert api.get("/api/projects/old-name").status_code == 404
    assert api.get("/api/projects/new-name").status_code == 200


def test_duplicate_names_conflict_with_409(api):
    create(api, name="taken")
    create(api, name="other")
    again = api.post(
        "/api/projects", {"name": "taken"}, content_type="application/json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "project_exists"
    assert "already exists" in again.json()["detail"]

    rename = api.patch(
        "/api/projects/other", {"name": "taken"}, content_type="application/json"
    )
    assert rename.status_code == 409
    assert rename.json()["code"] == "project_exists"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "must not be empty"),
        (str(uuid.uuid4()), "looks like a project id"),
        ("x" * 300, "at most 255"),
        ("tab\there", "control characters"),
    ],
)
def test_bad_names_are_400_with_the_domain_message(api, name, message):
    response = api.post(
        "/api/projects", {"name": name}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_project_name"
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": 5},
        {"name": "ok", "description": "nul\x00byte"},
        {"name": "ok", "metadata": {"key": "nul\x00"}},
        {"name": "ok", "metadata": {"nul\x00": 1}},
        {"name": "ok", "metadata": [1]},
    ],
)
def test_invalid_bodies_are_422_with_the_failing_fields(api, body):
    response = api.post("/api/projects", body, content_type="application/json")
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert payload["detail"].startswith("Invalid input: body.payload")
    assert payload["errors"] and all("loc" in error for error in payload["errors"])
    assert project_list() == []


def test_non_finite_numbers_in_metadata_are_422(api):
    response = api.post(
        "/api/projects",
        '{"name": "nan", "metadata": {"x": NaN}}',
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "NaN" in response.json()["detail"]


def test_unparsable_json_is_400(api):
    response = api.post("/api/projects", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Cannot parse request body",
        "code": "bad_request",
    }


def test_unknown_project_is_404(api):
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(
            "/api/projects/ghost", {"description": "x"}, content_type="application/json"
        )
        assert response.status_code == 404, method
        assert response.json()["code"] == "project_not_found"
        assert "'ghost'" in response.json()["detail"]


def test_nul_in_the_path_is_422_not_a_database_error(api):
    response = api.get("/api/projects/a%00b")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "id_or_name"]


def test_delete_needs_confirmation_then_drops_the_database(api):
    created = create(api, name="doomed")

    refused = api.delete("/api/projects/doomed")
    assert refused.status_code == 400
    assert refused.json()["code"] == "confirmation_required"
    assert "?confirm=true" in refused.json()["detail"]
    assert api.delete("/api/projects/doomed?confirm=false").status_code == 400
    assert project_find(reference="doomed") is not None

    deleted = api.delete(f"/api/projects/{created['id']}?confirm=true")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert project_find(reference="doomed") is None
    assert not project_database_exists(database_name=created["database_name"])
    assert api.get("/api/projects/doomed").status_code == 404


@pytest.mark.parametrize("body", ["{}", "true", "[]", '{"unknown": 1}'])
def test_patch_without_a_change_is_422(api, body):
    create(api, name="steady")
    response = api.patch("/api/projects/steady", body, content_type="application/json")
    assert response.status_code == 422
    assert "at least one of name, description or metadata" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "broken \\ud800 escape"}',
        '{"name": "ok", "description": "broken \\udc80 escape"}',
        '{"name": "ok", "metadata": {"team": "\\ud800"}}',
    ],
)
def test_lone_surrogates_are_a_clear_client_error(api, body):
    response = api.post("/api/projects", body, content_type="application/json")
    assert response.status_code in (400, 422), response.content
    assert "surrogate" in response.json()["detail"]
    assert project_list() == []
    assert api.get("/api/projects/broken%20%ED%A0%80").status_code in (404, 422)
