"""Admin for indexing jobs: a read-only record of every run, for any project.

Jobs are started from a project's page (or the CLI, MCP, API) and written only
by the process that runs them, so the admin never adds, edits or deletes one.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.text import Truncator

from indexing.models import IndexJob
from indexing.selectors import embedding_progress_text

ERROR_PREVIEW_CHARS = 120


@admin.register(IndexJob)
class IndexJobAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "repo_path",
        "status",
        "phase",
        "files",
        "chunks_embedded",
        "embedding",
        "created_at",
        "error_preview",
    ]
    list_filter = ["status"]
    list_select_related = ["project"]
    search_fields = ["repo_path", "project__name", "error"]
    ordering = ["-created_at"]
    fields = [
        "id",
        "project",
        "repo_path",
        "force_reindex",
        "status",
        "phase",
        "error",
        "worker",
        ("files_total", "files_done"),
        ("files_indexed", "files_unchanged", "files_deleted", "files_skipped"),
        "skipped_by_reason",
        ("chunks_total", "chunks_embedded", "chunks_to_embed"),
        "embedding",
        "embedded_by",
        ("created_at", "started_at", "finished_at", "heartbeat_at"),
    ]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).using("default")

    @admin.display(description="files done/total")
    def files(self, obj: IndexJob) -> str:
        return f"{obj.files_done}/{obj.files_total}"

    @admin.display(description="embedding")
    def embedding(self, obj: IndexJob) -> str:
        return embedding_progress_text(
            phase=obj.phase,
            chunks_embedded=obj.chunks_embedded,
            chunks_to_embed=obj.chunks_to_embed,
            embed_rate=obj.embed_rate,
            eta_seconds=obj.eta_seconds,
        )

    @admin.display(description="error")
    def error_preview(self, obj: IndexJob) -> str:
        return Truncator(obj.error).chars(ERROR_PREVIEW_CHARS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: IndexJob | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: IndexJob | None = None
    ) -> bool:
        return False
