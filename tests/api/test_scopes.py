"""Token scopes on every REST route: a table over the OpenAPI schema.

Each operation of /api/openapi.json (but /health) is called with tokens of
every permission over project A, a token over project B only (out of scope)
and tokens over every project. A call the token covers passes the scope
check and answers the route's own status; any other gets 403 naming the
missing scope, worded the same for an unknown project as for an existing
one the token does not list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from indexing.models import IndexJob
from registry.models import ApiToken
from registry.tokens import apitoken_create

API_TOKEN = "static-admin-token"
A, B = "scope-a", "scope-b"


@dataclass(frozen=True)
class Call:
    """How to call one operation, what it needs and what it answers when allowed."""

    permission: str
    allowed: int
    # "project": the path's project; "every": create/restore, which need a
    # token over every project; "list": answers everyone, filtered.
    touches: str = "project"
    body: dict | None = None
    query: str = ""
    multipart: bool = False


ROUTES: dict[tuple[str, str], Call] = {
    ("GET", "/api/projects"): Call("read", 200, touches="list"),
    # An existing name: a token allowed to create gets past the check to 409.
    ("POST", "/api/projects"): Call("write", 409, touches="every", body={"name": A}),
    ("GET", "/api/projects/{id_or_name}"): Call("read", 200),
    ("PATCH", "/api/projects/{id_or_name}"): Call(
        "write", 200, body={"description": "changed"}
    ),
    # Without ?confirm=true nothing is dropped: 400 once past the check.
    ("DELETE", "/api/projects/{id_or_name}"): Call("write", 400),
    ("POST", "/api/projects/{id_or_name}/index"): Call(
        "write", 400, body={"repo_path": "/etc"}
    ),
    ("POST", "/api/projects/{id_or_name}/refresh"): Call(
        "write", 404, body={"repository": "/nowhere/indexed"}
    ),
    ("GET", "/api/projects/{id_or_name}/jobs"): Call("read", 200),
    ("GET", "/api/projects/{id_or_name}/repositories"): Call("read", 200),
    ("GET", "/api/projects/{id_or_name}/search"): Call("read", 200, query="q=retry"),
    ("GET", "/api/projects/{id_or_name}/symbols"): Call("read", 200, query="name=x"),
    ("GET", "/api/projects/{id_or_name}/references"): Call("read", 200, query="name=x"),
    ("GET", "/api/projects/{id_or_name}/files/{path}/outline"): Call("read", 404),
    ("GET", "/api/projects/{id_or_name}/grep"): Call("read", 200, query="pattern=x"),
    ("GET", "/api/jobs/{job_id}"): Call("read", 200, touches="job"),
    ("POST", "/api/projects/{id_or_name}/move"): Call(
        "admin", 400, body={"server": "nowhere"}
    ),
    ("GET", "/api/projects/{id_or_name}/backup"): Call("admin", 200),
    # Not a backup: an allowed token gets past the check to 400.
    ("POST", "/api/projects/restore"): Call(
        "admin", 400, touches="every", multipart=True
    ),
    # The literal path of a project named "restore", which does not exist:
    # 404 for tokens over every project, 403 (same words) for the others.
    ("GET", "/api/projects/restore"): Call("read", 404, touches="restore"),
    ("PATCH", "/api/projects/restore"): Call(
        "write", 404, touches="restore", body={"description": "x"}
    ),
    ("DELETE", "/api/projects/restore"): Call("write", 404, touches="restore"),
    ("GET", "/api/projects/{id_or_name}/metrics"): Call("read", 200),
    # Calls over several projects name theirs in the query.
    ("GET", "/api/search"): Call("read", 200, query="projects={target}&q=retry"),
    ("GET", "/api/symbols"): Call("read", 200, query="projects={target}&name=x"),
    ("GET", "/api/grep"): Call("read", 200, query="projects={target}&pattern=x"),
}

RANK = {"read": 0, "write": 1, "admin": 2}
# name -> (permission, covers A, over every project)
TOKENS = {
    "read-a": ("read", True, False),
    "write-a": ("write", True, False),
    "admin-a": ("admin", True, False),
    "admin-b": ("admin", False, False),
    "read-all": ("read", True, True),
    "write-all": ("write", True, True),
    "API_TOKEN": ("admin", True, True),
}


@pytest.fixture
def world(project_factory, settings):
    settings.DEBUG = False
    settings.API_TOKEN = API_TOKEN
    settings.CELERY_BROKER_URL = ""
    first, second = project_factory(A), project_factory(B)
    plaintexts = {"API_TOKEN": API_TOKEN}
    for name, (permission, covers_a, every) in TOKENS.items():
        if name == "API_TOKEN":
            continue
        projects = None if every else [first if covers_a else second]
        plaintexts[name] = apitoken_create(
            name=name, permission=permission, projects=projects
        )[1]
    job = IndexJob.objects.using("default").create(project=first, repo_path="/tmp/x")
    return {"a": first, "b": second, "job": job, "tokens": plaintexts}


def _expected(call: Call, token: str) -> int:
    permission, covers_a, every = TOKENS[token]
    if call.touches == "list":
        return call.allowed
    if RANK[permission] < RANK[call.permission]:
        return 403
    if call.touches in ("every", "restore"):
        return call.allowed if every else 403
    return call.allowed if covers_a else 403


def _request(client: Client, method: str, path: str, call: Call, world, target: str):
    url = path.replace("{id_or_name}", target).replace("{path}", "src/x.py")
    url = url.replace("{job_id}", str(world["job"].id))
    if call.query:
        url += "?" + call.query.replace("{target}", target)
    if call.multipart:
        upload = SimpleUploadedFile("x.tar", b"not a backup", "application/x-tar")
        return client.post(url, {"file": upload})
    if call.body is not None:
        return getattr(client, method.lower())(
            url, data=json.dumps(call.body), content_type="application/json"
        )
    return getattr(client, method.lower())(url)


def test_the_table_covers_every_operation_of_the_schema(client, settings):
    schema = client.get("/api/openapi.json").json()
    operations = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
    }
    assert operations - {("GET", "/api/health")} == set(ROUTES)


def test_every_route_with_every_token(world):
    failures = []
    for (method, path), call in ROUTES.items():
        for name, plaintext in world["tokens"].items():
            client = Client(headers={"Authorization": f"Bearer {plaintext}"})
            response = _request(client, method, path, call, world, A)
            expected = _expected(call, name)
            if response.status_code != expected:
                failures.append((method, path, name, response.status_code, expected))
                continue
            if expected == 403:
                body = response.json()
                assert body["code"] == "scope_missing"
                assert f"`{call.permission}` scope" in body["detail"]
                assert name in body["detail"] or name == "API_TOKEN"
    assert failures == []


def test_listing_and_metrics_show_only_readable_projects(world, client):
    tokens = world["tokens"]

    def listed(token: str) -> list[str]:
        response = Client(headers={"Authorization": f"Bearer {tokens[token]}"}).get(
            "/api/projects"
        )
        return [project["name"] for project in response.json()]

    assert listed("read-a") == [A]
    assert listed("admin-b") == [B]
    assert listed("read-all") == listed("API_TOKEN") == [A, B]

    def scraped(token: str) -> str:
        return (
            Client(headers={"Authorization": f"Bearer {tokens[token]}"})
            .get("/metrics")
            .content.decode()
        )

    mine = scraped("read-a")
    assert f'project="{A}"' in mine and f'project="{B}"' not in mine
    assert 'codebase_mcp_projects{server="default"} 1' in mine
    everything = scraped("API_TOKEN")
    assert f'project="{A}"' in everything and f'project="{B}"' in everything


def test_an_unlisted_project_and_an_unknown_one_get_the_same_answer(world):
    client = Client(headers={"Authorization": f"Bearer {world['tokens']['admin-b']}"})
    for (method, path), call in ROUTES.items():
        if call.touches != "project":
            continue
        existing = _request(client, method, path, call, world, A)
        unknown = _request(client, method, path, call, world, "no-such-project")
        assert existing.status_code == unknown.status_code == 403, (method, path)
        assert existing.json()["detail"] == unknown.json()["detail"].replace(
            "no-such-project", A
        )
    # A job of a project the token does not list reads as a job that does not exist.
    listed_job = client.get(f"/api/jobs/{world['job'].id}")
    missing_job = client.get("/api/jobs/00000000-0000-0000-0000-000000000001")
    assert listed_job.status_code == missing_job.status_code == 403
    assert listed_job.json()["detail"] == missing_job.json()["detail"].replace(
        "00000000-0000-0000-0000-000000000001", str(world["job"].id)
    )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer cbmcp_",
        "Bearer cbmcp__",
        "Bearer cbmcp_00000000_nothing",
        "Bearer cbmcp_' OR 1=1 --_x",
        "Bearer " + "cbmcp_abcdef12_" + "x" * 10_000,
        "Bearer cbmcp_ünïcode_x",
        "Bearer \x00",
        "Basic cbmcp_abcdef12_x",
    ],
)
def test_malformed_tokens_are_refused_with_401(world, header):
    try:
        client = Client(headers={"Authorization": header})
        response = client.get("/api/projects")
    except (ValueError, UnicodeError):
        return  # the test client itself refuses to send it: nothing reached us
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_revoked_or_altered_token_is_refused(world, capsys):
    from django.core.management import call_command

    plaintext = world["tokens"]["read-a"]
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})
    assert client.get(f"/api/projects/{A}").status_code == 200
    altered = Client(headers={"Authorization": f"Bearer {plaintext[:-1]}x"})
    assert altered.get(f"/api/projects/{A}").status_code == 401
    token = ApiToken.objects.get(name="read-a")
    assert token.last_used_at is not None
    assert plaintext not in {token.digest, token.prefix}

    call_command("apitoken", "revoke", token.prefix)
    response = client.get(f"/api/projects/{A}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_token_for_a_asking_for_b_is_refused(world):
    client = Client(headers={"Authorization": f"Bearer {world['tokens']['admin-a']}"})
    for path in (f"/api/projects/{B}", f"/api/projects/{B}/search?q=x"):
        response = client.get(path)
        assert response.status_code == 403
        assert "`read` scope on project 'scope-b'" in response.json()["detail"]
    response = client.post(
        f"/api/projects/{B}/index",
        data=json.dumps({"repo_path": "/tmp"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "`write` scope" in response.json()["detail"]


def test_a_call_over_several_projects_reads_only_what_the_token_lists(world):
    scoped = Client(headers={"Authorization": f"Bearer {world['tokens']['read-a']}"})
    assert scoped.get(f"/api/search?projects={A}&q=x").status_code == 200
    listed = scoped.get(f"/api/search?projects={A},{B}&q=x")
    unknown = scoped.get(f"/api/search?projects={A},no-such-project&q=x")
    assert listed.status_code == unknown.status_code == 403
    assert "`read` scope on projects 'scope-b'" in listed.json()["detail"]
    assert listed.json()["detail"] == unknown.json()["detail"].replace(
        "no-such-project", B
    )
    # A token over every project is told which names do not exist, as before.
    full = Client(headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert full.get(f"/api/search?projects={A},{B}&q=x").status_code == 200
    assert full.get(f"/api/search?projects={A},nope&q=x").status_code == 404


@pytest.mark.parametrize(
    "reference",
    [
        "x'; DROP TABLE projects; --",
        "scope-a\" OR name LIKE '%",
        "n" * 1000,
        "00000000-0000-0000-0000-000000000000",
        "ŝçöpé-ä",
    ],
)
def test_hostile_project_names_get_the_scoped_answer_and_leak_nothing(world, reference):
    from urllib.parse import quote

    scoped = Client(headers={"Authorization": f"Bearer {world['tokens']['read-a']}"})
    response = scoped.get(f"/api/projects/{quote(reference, safe='')}")
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "`read` scope on project" in detail and len(detail) < 400
    full = Client(headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert full.get(f"/api/projects/{quote(reference, safe='')}").status_code == 404
    assert [p["name"] for p in full.get("/api/projects").json()] == [A, B]
