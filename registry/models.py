"""The project registry: one row per project, each with its own database."""

import uuid

from django.db import models

from registry.databases import DEFAULT_SERVER, ProjectLogin

DEFAULT_PROJECT_ID = uuid.UUID(int=0)
DEFAULT_PROJECT_NAME = "default"
DEFAULT_DATABASE_NAME = "cb_proj_default_00000000"


class Project(models.Model):
    """A workspace whose code lives in its own PostgreSQL database."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    database_name = models.CharField(max_length=255, unique=True, editable=False)
    # Which entry of PROJECT_DATABASE_SERVERS holds the database; changed only
    # by operations.move.project_move, in the transaction that ends a move.
    server = models.CharField(
        max_length=64, default=DEFAULT_SERVER, editable=False, db_index=True
    )
    # The PostgreSQL login role its database is reached as, and that role's
    # secret. Empty for a project made before roles existed: it is reached as
    # the admin until `migrate_projects` gives it one. Never shown anywhere.
    database_role = models.CharField(
        max_length=63, blank=True, default="", editable=False
    )
    database_secret = models.CharField(
        max_length=128, blank=True, default="", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "projects"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def database_login(self) -> ProjectLogin | None:
        """Return the login of the project's database; None before it has a role."""
        if not self.database_role:
            return None
        return ProjectLogin(role=self.database_role, secret=self.database_secret)


class ApiToken(models.Model):
    """A bearer token of the REST API and the MCP HTTP transport.

    Only a SHA-256 digest of the token is stored; `prefix` is its visible,
    unique start, by which a presented token is found. A token covers the
    projects listed (or every project when `all_projects`) with one
    permission: read < write < admin, each including the ones before.
    """

    READ, WRITE, ADMIN = "read", "write", "admin"
    PERMISSIONS = (READ, WRITE, ADMIN)

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    permission = models.CharField(
        max_length=8, choices=[(p, p) for p in PERMISSIONS], default=READ
    )
    all_projects = models.BooleanField(default=False)
    projects = models.ManyToManyField(Project, blank=True, related_name="api_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_tokens"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
