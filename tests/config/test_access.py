"""The one scope check every interface asks (and the federated endpoints will)."""

from __future__ import annotations

import pytest

from config.access import (
    ADMIN,
    LOCAL,
    READ,
    WRITE,
    Grant,
    project_for,
    project_names_readable,
    projects_for,
    projects_readable,
    token_allows,
)
from registry.exceptions import AccessDenied, ProjectNotFound


@pytest.fixture
def three(project_factory):
    return [project_factory(name) for name in ("acc-a", "acc-b", "acc-c")]


def test_permissions_include_the_lower_ones_on_listed_projects_only(three):
    a, b, _ = three
    write_a = Grant(holder="token 'w'", permission=WRITE, project_ids=frozenset({a.pk}))
    assert token_allows(write_a, project=a, permission=READ)
    assert token_allows(write_a, project=a, permission=WRITE)
    assert not token_allows(write_a, project=a, permission=ADMIN)
    assert not token_allows(write_a, project=b, permission=READ)
    assert not token_allows(write_a, project=None, permission=READ)
    assert token_allows(LOCAL, project=None, permission=ADMIN)
    with pytest.raises(ValueError, match="unknown permission"):
        token_allows(LOCAL, project=a, permission="root")


def test_projects_for_keeps_order_drops_duplicates_and_refuses_alike(three):
    a, b, c = three
    grant = Grant(
        holder="token 'r'", permission=READ, project_ids=frozenset({a.pk, b.pk})
    )
    found = projects_for(grant, references=["acc-b", "acc-a", str(b.pk), "acc-b"])
    assert [p.name for p in found] == ["acc-b", "acc-a"]

    answers = []
    for reference in ("acc-c", "acc-nope", "x'; DROP TABLE projects; --"):
        with pytest.raises(AccessDenied) as refused:
            projects_for(grant, references=["acc-a", reference])
        answers.append(str(refused.value).replace(repr(reference), "<name>"))
    assert len(set(answers)) == 1
    assert "`read` scope on project <name>" in answers[0]

    everything = Grant(holder="API_TOKEN", permission=READ)
    with pytest.raises(ProjectNotFound):
        project_for(everything, reference="acc-nope", permission=READ)
    with pytest.raises(AccessDenied):
        # A permission too low is refused before the name is looked up.
        project_for(everything, reference="acc-nope", permission=WRITE)


def test_listings_are_filtered(three):
    a, b, c = three
    grant = Grant(holder="token 'r'", permission=READ, project_ids=frozenset({c.pk}))
    assert projects_readable(grant, projects=three) == [c]
    assert projects_readable(grant, projects=three, permission=WRITE) == []
    names = ["acc-a", "acc-c", "acc-nope", "acc-c"]
    assert project_names_readable(grant, names=names) == ["acc-c", "acc-c"]
    assert projects_readable(LOCAL, projects=three) == three
