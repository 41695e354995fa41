"""Shared fixtures: real embedded PostgreSQL, real project databases."""

import os
import uuid

import pytest

if not os.environ.get("CODEBASE_MCP_HOME"):
    pytest.exit(
        "Run the suite with `python3 manage.py test`: it gives the tests their own "
        "data directory and embedded PostgreSQL, so your projects are never touched.",
        returncode=2,
    )


def _allow_project_aliases() -> None:
    """Let tests open the project databases they create at runtime.

    Django's test case refuses connections to aliases it was not told about
    when the class was set up; project aliases come and go with the projects a
    test provisions, and each is a real, separate database.
    """
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.test import testcases

    def guarded_aliases(cls):
        return [
            alias
            for alias in connections
            if alias not in cls.databases and not alias.startswith("cb_proj_")
        ]

    def add_databases_failures(cls):
        cls.databases = cls._validate_databases()
        for alias in guarded_aliases(cls):
            connection = connections[alias]
            for name, operation in cls._disallowed_connection_methods:
                message = cls._disallowed_database_msg % {
                    "test": f"{cls.__module__}.{cls.__qualname__}",
                    "alias": alias,
                    "operation": operation,
                }
                method = getattr(connection, name)
                setattr(connection, name, testcases._DatabaseFailure(method, message))
        cls._guarded_aliases = guarded_aliases(cls)

    def remove_databases_failures(cls):
        for alias in getattr(cls, "_guarded_aliases", []):
            connection = connections[alias]
            for name, _ in cls._disallowed_connection_methods:
                method = getattr(connection, name)
                setattr(connection, name, method.wrapped)

    def ensure_connection_patch_method(cls):
        real_ensure_connection = BaseDatabaseWrapper.ensure_connection
        django_patched = original_patch.__func__(cls)

        def ensure_connection(self, *args, **kwargs):
            if self.alias.startswith("cb_proj_"):
                return real_ensure_connection(self, *args, **kwargs)
            return django_patched(self, *args, **kwargs)

        return ensure_connection

    case = testcases.TransactionTestCase
    original_patch = case.ensure_connection_patch_method
    case.ensure_connection_patch_method = classmethod(ensure_connection_patch_method)
    testcases.SimpleTestCase._add_databases_failures = classmethod(
        add_databases_failures
    )
    testcases.SimpleTestCase._remove_databases_failures = classmethod(
        remove_databases_failures
    )


_allow_project_aliases()


@pytest.fixture
def project_factory(transactional_db):
    """Create real projects (with databases); drop them after the test."""
    from registry.models import Project
    from registry.services import project_create, project_delete

    created: list[Project] = []

    def make(name: str | None = None, **kwargs) -> Project:
        project = project_create(name=name or f"test-{uuid.uuid4().hex[:8]}", **kwargs)
        created.append(project)
        return project

    yield make
    for project in created:
        if Project.objects.using("default").filter(pk=project.pk).exists():
            project_delete(project=project)
        else:
            from registry.databases import project_database_drop

            project_database_drop(database_name=project.database_name)
