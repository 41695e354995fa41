"""Admin for projects: creating one provisions its database, deleting drops it."""

from django import forms
from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat

from indexing.selectors import project_status
from registry.exceptions import RegistryError
from registry.models import Project
from registry.selectors import project_find
from registry.services import (
    project_create,
    project_delete,
    project_name_clean,
    project_update,
)


class ProjectForm(forms.ModelForm):
    """Validate names with the registry's own rules before anything is created."""

    class Meta:
        model = Project
        fields = ["name", "description", "metadata"]

    def clean_name(self):
        try:
            name = project_name_clean(name=self.cleaned_data.get("name") or "")
        except RegistryError as exc:
            raise forms.ValidationError(str(exc)) from exc
        other = project_find(reference=name)
        if other is not None and other.pk != self.instance.pk:
            raise forms.ValidationError(f"A project named {name!r} already exists.")
        return name


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = [
        "name",
        "database_name",
        "size",
        "repositories",
        "chunks",
        "last_indexed",
        "embedding_model",
    ]
    search_fields = ["name", "description"]
    readonly_fields = ["id", "database_name", "created_at", "updated_at"]
    fields = ["name", "description", "metadata", *readonly_fields]
    change_form_template = "admin/registry/project/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).using("default")

    # The list reads each project's own database once per row and caches it on
    # the instance, so the columns below share one status read.
    def _status(self, obj: Project):
        if not hasattr(obj, "_status_cache"):
            try:
                obj._status_cache = project_status(project=obj)
            except Exception as exc:  # an unreachable project must not break the list
                obj._status_cache = exc
        return obj._status_cache

    def _field(self, obj: Project, name: str, fmt=lambda v: v):
        status = self._status(obj)
        if isinstance(status, Exception):
            return "unavailable"
        value = getattr(status, name)
        return "-" if value is None else fmt(value)

    @admin.display(description="size")
    def size(self, obj: Project):
        return self._field(obj, "size_bytes", filesizeformat)

    @admin.display(description="repositories")
    def repositories(self, obj: Project):
        return self._field(obj, "repositories", len)

    @admin.display(description="chunks")
    def chunks(self, obj: Project):
        return self._field(obj, "chunks")

    @admin.display(description="last indexed")
    def last_indexed(self, obj: Project):
        return self._field(obj, "last_indexed_at", lambda v: v[:19].replace("T", " "))

    @admin.display(description="embedding model")
    def embedding_model(self, obj: Project):
        return self._field(obj, "embedding_model")

    def save_model(self, request, obj: Project, form, change):
        try:
            if change:
                project_update(
                    project=obj,
                    name=obj.name,
                    description=obj.description,
                    metadata=obj.metadata,
                )
                return
            created = project_create(
                name=obj.name, description=obj.description, metadata=obj.metadata
            )
        except RegistryError as exc:
            # The form was valid but the registry refused: show why, keep nothing.
            messages.error(request, str(exc))
            raise _Refused(str(exc)) from exc
        obj.pk = created.pk
        obj.id = created.id
        obj.database_name = created.database_name
        obj.created_at = created.created_at
        obj.updated_at = created.updated_at
        obj._state.adding = False
        obj._state.db = "default"

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused:
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            status = self._status(obj)
            extra_context["project_status"] = (
                None if isinstance(status, Exception) else status
            )
            extra_context["project_status_error"] = (
                str(status) if isinstance(status, Exception) else None
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_model(self, request, obj: Project):
        project_delete(project=obj)

    def delete_queryset(self, request, queryset):
        for project in queryset:
            project_delete(project=project)


class _Refused(Exception):
    """Raise out of save_model to abandon an add the registry refused."""
