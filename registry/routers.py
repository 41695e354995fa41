"""Keep registry tables in `default` and project tables in project databases."""

from __future__ import annotations

# The `indexing` app owns both sides: its job records live in the registry,
# everything else in each project's own database.
PROJECT_APP = "indexing"
REGISTRY_SIDE_MODELS = frozenset({"indexjob"})


class ProjectDatabaseRequired(RuntimeError):
    """Raise when a per-project model is queried without naming its database."""


def model_is_project_scoped(model: type) -> bool:
    """Return whether a model's rows live in a project database."""
    meta = model._meta
    return meta.app_label == PROJECT_APP and meta.model_name not in REGISTRY_SIDE_MODELS


class ProjectDatabaseRouter:
    """Route registry models to `default`; refuse to guess for project models."""

    def _route(self, model: type, hints: dict) -> str:
        if not model_is_project_scoped(model):
            return "default"
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        raise ProjectDatabaseRequired(
            f"{model.__name__} lives in a project database: query it with "
            ".using(<project database alias>)."
        )

    def db_for_read(self, model: type, **hints) -> str:
        return self._route(model, hints)

    def db_for_write(self, model: type, **hints) -> str:
        return self._route(model, hints)

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db: str, app_label: str, model_name=None, **hints) -> bool:
        project_side = db != "default"
        if app_label != PROJECT_APP:
            return not project_side
        if model_name is None:
            # Model-less operations (CREATE EXTENSION vector, raw SQL) belong to
            # the project databases; the registry may lack pgvector.
            return project_side
        return (model_name not in REGISTRY_SIDE_MODELS) == project_side
