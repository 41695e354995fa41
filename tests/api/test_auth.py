"""Bearer-token auth of the REST API, with DEBUG on and off, and the docs."""

import pytest
from django.test import Client

TOKEN = "s3cret-token"


@pytest.fixture
def locked(settings):
    settings.DEBUG = False
    settings.API_TOKEN = TOKEN


def test_missing_token_is_refused_with_401(db, client, locked):
    response = client.get("/api/projects")
    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"
    assert "Authorization: Bearer" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", "Bearer", f"Basic {TOKEN}", TOKEN, f"Token {TOKEN}"],
)
def test_wrong_token_is_refused_with_401(db, locked, header):
    response = Client(headers={"Authorization": header}).get("/api/projects")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_right_token_is_accepted(db, locked):
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  Bearer   {TOKEN} "):
        response = Client(headers={"Authorization": header}).get("/api/projects")
        assert response.status_code == 200, header
        assert response.json() == []


def test_every_endpoint_but_health_needs_the_token(db, client, locked):
    requests = [
        ("get", "/api/projects"),
        ("post", "/api/projects"),
        ("get", "/api/projects/default"),
        ("patch", "/api/projects/default"),
        ("delete", "/api/projects/default"),
        ("post", "/api/projects/default/index"),
        ("post", "/api/projects/default/refresh"),
        ("get", "/api/projects/default/jobs"),
        ("get", "/api/projects/default/repositories"),
        ("get", "/api/projects/default/search?q=x"),
        ("get", "/api/search?projects=default&q=x"),
        ("get", "/api/symbols?projects=default&name=x"),
        ("get", "/api/grep?projects=default&pattern=x"),
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000"),
    ]
    for method, path in requests:
        response = getattr(client, method)(path, content_type="application/json")
        assert response.status_code == 401, (method, path)
    assert client.get("/api/health").status_code == 200


def test_debug_without_token_leaves_the_api_open(db, client, settings):
    settings.DEBUG = True
    settings.API_TOKEN = ""
    assert client.get("/api/projects").status_code == 200


def test_debug_with_a_token_still_requires_it(db, client, settings):
    settings.DEBUG = True
    settings.API_TOKEN = TOKEN
    assert client.get("/api/projects").status_code == 401
    authorised = Client(headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorised.get("/api/projects").status_code == 200


def test_no_token_configured_outside_debug_closes_the_api(db, settings):
    settings.DEBUG = False
    settings.API_TOKEN = ""
    for client in (Client(), Client(headers={"Authorization": "Bearer anything"})):
        response = client.get("/api/projects")
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == "token_not_configured"
        assert "set API_TOKEN" in body["detail"]
    assert Client().get("/api/health").status_code == 200


def test_docs_and_schema_are_served(client, locked):
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiTokenAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    operations = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
    }
    assert operations == {
        ("GET", "/api/health"),
        ("GET", "/api/projects"),
        ("POST", "/api/projects"),
        ("GET", "/api/projects/{id_or_name}"),
        ("PATCH", "/api/projects/{id_or_name}"),
        ("DELETE", "/api/projects/{id_or_name}"),
        ("POST", "/api/projects/{id_or_name}/index"),
        ("POST", "/api/projects/{id_or_name}/refresh"),
        ("GET", "/api/projects/{id_or_name}/jobs"),
        ("GET", "/api/projects/{id_or_name}/repositories"),
        ("GET", "/api/projects/{id_or_name}/search"),
        ("GET", "/api/projects/{id_or_name}/symbols"),
        ("GET", "/api/projects/{id_or_name}/references"),
        ("GET", "/api/projects/{id_or_name}/files/{path}/outline"),
        ("GET", "/api/projects/{id_or_name}/grep"),
        ("GET", "/api/search"),
        ("GET", "/api/symbols"),
        ("GET", "/api/grep"),
        ("GET", "/api/jobs/{job_id}"),
        ("POST", "/api/projects/{id_or_name}/move"),
        ("GET", "/api/projects/{id_or_name}/backup"),
        ("POST", "/api/projects/restore"),
        ("GET", "/api/projects/restore"),
        ("PATCH", "/api/projects/restore"),
        ("DELETE", "/api/projects/restore"),
        ("GET", "/api/projects/{id_or_name}/metrics"),
    }
    health = schema["paths"]["/api/health"]["get"]
    assert "security" not in health
    assert schema["paths"]["/api/projects"]["get"]["security"] == [{"ApiTokenAuth": []}]
