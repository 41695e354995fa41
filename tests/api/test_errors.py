"""Each domain error maps to one HTTP status with a `{detail, code}` body."""

import json

import pytest
from django.test import RequestFactory

from config.api import api
from indexing.exceptions import (
    EmbeddingFailed,
    EmbeddingModelMismatch,
    IndexingError,
    IndexingInProgress,
    IndexJobNotFound,
    RepositoryPathInvalid,
)
from registry.exceptions import (
    InvalidProjectName,
    ProjectAlreadyExists,
    ProjectDatabaseExists,
    ProjectDatabaseUnavailable,
    ProjectNotFound,
    ProvisioningFailed,
    RegistryError,
)
from search.exceptions import (
    InvalidSearchQuery,
    SearchError,
    UnknownLanguage,
    UnknownRepository,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ProjectNotFound("ghost"), 404),
        (IndexJobNotFound("0"), 404),
        (UnknownRepository("no such repository"), 404),
        (ProjectAlreadyExists("taken"), 409),
        (ProjectDatabaseExists("cb_proj_x"), 409),
        (IndexingInProgress("another run indexes it"), 409),
        (EmbeddingModelMismatch("other model"), 409),
        (InvalidProjectName("bad name"), 400),
        (RepositoryPathInvalid("bad path"), 400),
        (InvalidSearchQuery("bad query"), 400),
        (UnknownLanguage("klingon"), 400),
        (RegistryError("registry"), 400),
        (IndexingError("indexing"), 400),
        (SearchError("search"), 400),
        (ProjectDatabaseUnavailable("server down"), 503),
        (ProvisioningFailed("no pgvector"), 503),
        (EmbeddingFailed("backend down"), 503),
    ],
)
def test_domain_errors_map_to_statuses(error, status):
    request = RequestFactory().get("/api/projects")
    response = api.on_exception(request, error)
    assert response.status_code == status
    assert json.loads(response.content) == {"detail": str(error), "code": error.code}


def test_unexpected_errors_are_json_500s_and_logged(caplog):
    request = RequestFactory().get("/api/projects")
    response = api.on_exception(request, ZeroDivisionError("boom"))
    assert response.status_code == 500
    assert json.loads(response.content)["code"] == "internal_error"
    assert "boom" not in response.content.decode()
    assert "GET /api/projects failed" in caplog.text
