"""Admin for projects: creating one provisions its database, deleting drops it.

A project's page also shows what its database holds and its recent indexing
jobs, starts indexing a repository (or reindexing one) and searches the code.
The list places new projects on a server, moves projects between servers,
downloads a project's backup and restores one from a file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from indexing.exceptions import IndexingError
from indexing.jobs import index_job_start
from indexing.selectors import (
    embedding_progress_text,
    index_job_list,
    project_status,
)
from operations.backup import project_backup, project_restore
from operations.move import project_move
from registry.databases import database_name_sanitize, database_server_names
from registry.exceptions import RegistryError
from registry.models import ApiToken, Project
from registry.selectors import project_find
from registry.services import (
    project_create,
    project_delete,
    project_name_clean,
    project_update,
)
from registry.tokens import apitoken_create, apitoken_revoke
from search.exceptions import SearchError
from search.selectors import MODES, chunk_search

RECENT_JOBS = 10
SEARCH_LIMIT = 10


def _server_choices(*, automatic: str) -> list[tuple[str, str]]:
    """Return the configured servers as choices, after a blank `automatic` one."""
    return [("", automatic), *((name, name) for name in database_server_names())]


class ProjectForm(forms.ModelForm):
    """Validate names with the registry's own rules before anything is created."""

    # Not Project.server, which only a move may change: where a new project's
    # database goes, offered on the add page alone.
    placement = forms.ChoiceField(
        label="Server",
        required=False,
        help_text="The PostgreSQL server that will hold the project's database.",
    )

    class Meta:
        model = Project
        fields = ["name", "description", "metadata"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            # Read per form: the servers come from settings, not from import time.
            self.fields["placement"].choices = _server_choices(
                automatic="Automatic: the server with the fewest projects"
            )
        else:
            del self.fields["placement"]

    def clean_name(self):
        try:
            name = project_name_clean(name=self.cleaned_data.get("name") or "")
        except RegistryError as exc:
            raise forms.ValidationError(str(exc)) from exc
        other = project_find(reference=name)
        if other is not None and other.pk != self.instance.pk:
            raise forms.ValidationError(f"A project named {name!r} already exists.")
        return name


class RepositoryIndexForm(forms.Form):
    """Parse "index a repository"; the indexing service judges the path itself."""

    repo_path = forms.CharField(
        label="Repository path",
        max_length=4096,
        help_text="Absolute path of the repository's root folder on the server.",
    )
    force_reindex = forms.BooleanField(label="Reindex every file", required=False)


class ProjectRestoreForm(forms.Form):
    """Parse "restore a backup"; the restore service judges the file itself."""

    backup = forms.FileField(
        label="Backup file",
        help_text="A file written by `manage.py backupproject` or downloaded here.",
    )
    name = forms.CharField(
        label="Restore as",
        required=False,
        max_length=255,
        help_text="Project name; empty: the name the project was backed up under.",
    )
    server = forms.ChoiceField(label="Server", required=False)
    replace = forms.BooleanField(
        label="Replace an existing project of that name",
        required=False,
        help_text="Its current data is dropped once the restore has succeeded.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["server"].choices = _server_choices(
            automatic="Automatic: the replaced project's server, else the one with "
            "the fewest projects"
        )


class ProjectSearchForm(forms.Form):
    """Parse the search box; the search selector judges the query itself."""

    q = forms.CharField(label="Search", required=False, strip=True)
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], required=False)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = [
        "name",
        "database_name",
        "server",
        "size",
        "repositories",
        "chunks",
        "last_indexed",
        "embedding_model",
    ]
    search_fields = ["name", "description"]
    readonly_fields = [
        "id",
        "database_name",
        "database_role",
        "server",
        "created_at",
        "updated_at",
    ]
    fields = ["name", "description", "metadata", *readonly_fields]
    actions = ["backup_download"]
    change_form_template = "admin/registry/project/change_form.html"
    change_list_template = "admin/registry/project/change_list.html"
    search_template = "admin/registry/project/search.html"
    restore_template = "admin/registry/project/restore.html"

    def get_queryset(self, request):
        return super().get_queryset(request).using("default")

    def get_urls(self) -> list[URLPattern]:
        """Add the restore, index and search views before the catch-all routes."""
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(
                "restore/",
                self.admin_site.admin_view(self.restore_view),
                name="{}_{}_restore".format(*info),
            ),
            path(
                "<path:object_id>/index/",
                self.admin_site.admin_view(self.index_view),
                name="{}_{}_index".format(*info),
            ),
            path(
                "<path:object_id>/search/",
                self.admin_site.admin_view(self.search_view),
                name="{}_{}_search".format(*info),
            ),
        ]
        return own + super().get_urls()

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
                name=obj.name,
                description=obj.description,
                metadata=obj.metadata,
                server=form.cleaned_data.get("placement") or None,
            )
        except RegistryError as exc:
            # The form was valid but the registry refused: show why, keep nothing.
            messages.error(request, str(exc))
            raise _Refused(str(exc)) from exc
        obj.pk = created.pk
        obj.id = created.id
        obj.database_name = created.database_name
        obj.server = created.server
        obj.created_at = created.created_at
        obj.updated_at = created.updated_at
        obj._state.adding = False
        obj._state.db = "default"

    def get_fields(self, request, obj=None):
        """Offer the server choice when adding; show the server read-only after."""
        if obj is None:
            return ["name", "description", "metadata", "placement"]
        return super().get_fields(request, obj)

    def get_actions(self, request):
        """Add one "move to <server>" action per configured server."""
        actions = super().get_actions(request)
        if IS_POPUP_VAR in request.GET or not self.has_change_permission(request):
            return actions
        for server in database_server_names():
            name = f"move_to_{server}"
            # Descriptions are %-formatted with the model's names.
            description = f"Move selected projects to server {server!r}"
            actions[name] = (
                self._move_action(server),
                name,
                description.replace("%", "%%"),
            )
        return actions

    @staticmethod
    def _move_action(server: str) -> Callable[..., None]:
        def move(
            modeladmin: ProjectAdmin,
            request: HttpRequest,
            queryset: QuerySet[Project],
        ) -> None:
            for project in queryset:
                try:
                    report = project_move(project=project, to_server=server)
                except RegistryError as exc:
                    modeladmin.message_user(request, str(exc), messages.ERROR)
                    continue
                modeladmin.message_user(
                    request,
                    f"Moved {report.project!r} from {report.source!r} to "
                    f"{report.target!r} in {report.seconds:.1f} s.",
                    messages.SUCCESS,
                )
                for warning in report.warnings:
                    modeladmin.message_user(request, warning, messages.WARNING)

        return move

    @admin.action(
        description="Download a backup of the selected project", permissions=["view"]
    )
    def backup_download(
        self, request: HttpRequest, queryset: QuerySet[Project]
    ) -> FileResponse | None:
        """Send the selected project's backup file as a download."""
        if queryset.count() != 1:
            self.message_user(
                request, "Select exactly one project to back up.", messages.ERROR
            )
            return None
        project = queryset.get()
        try:
            with tempfile.TemporaryDirectory(prefix="cbmcp-download-") as work:
                path = Path(work) / "backup.tar"
                project_backup(project=project, output=path)
                # Opened before the directory is removed: the open file stays
                # readable until FileResponse closes it after the last byte.
                stream = open(path, "rb")
        except RegistryError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return FileResponse(
            stream,
            as_attachment=True,
            filename=f"{database_name_sanitize(name=project.name)}-{stamp}.backup.tar",
            content_type="application/x-tar",
        )

    def restore_view(self, request: HttpRequest) -> HttpResponse:
        """Restore a project from an uploaded backup file, then show it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ProjectRestoreForm(request.POST, request.FILES)
        else:
            form = ProjectRestoreForm()
        if form.is_bound and form.is_valid():
            replace = form.cleaned_data["replace"]
            # Replacing drops a project's current data: more than adding one.
            if replace and not self.has_delete_permission(request):
                raise PermissionDenied
            try:
                with tempfile.TemporaryDirectory(prefix="cbmcp-upload-") as work:
                    archive = Path(work) / "backup.tar"
                    with open(archive, "wb") as target:
                        for chunk in form.cleaned_data["backup"].chunks():
                            target.write(chunk)
                    report = project_restore(
                        archive=archive,
                        name=form.cleaned_data["name"] or None,
                        server=form.cleaned_data["server"] or None,
                        replace=replace,
                    )
            except RegistryError as exc:
                messages.error(request, str(exc))
            else:
                verb = "Replaced" if report.replaced else "Restored"
                messages.success(
                    request,
                    f"{verb} project {report.project.name!r} on server "
                    f"{report.project.server!r}.",
                )
                for warning in report.warnings:
                    messages.warning(request, warning)
                return HttpResponseRedirect(self._change_url(report.project))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": "Restore a project from a backup",
            "form": form,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.restore_template, context)

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused:
            return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context.update(self._panel_context(request, obj))
        return super().change_view(request, object_id, form_url, extra_context)

    def _panel_context(self, request: HttpRequest, obj: Project) -> dict:
        """Return what the project's page shows below its form."""
        status = self._status(obj)
        failed = isinstance(status, Exception)
        jobs = index_job_list(project=obj, limit=RECENT_JOBS)
        for job in jobs:
            job.embedding_text = embedding_progress_text(
                phase=job.phase,
                chunks_embedded=job.chunks_embedded,
                chunks_to_embed=job.chunks_to_embed,
                embed_rate=job.embed_rate,
                eta_seconds=job.eta_seconds,
            )
        return {
            "project_status": None if failed else status,
            "project_status_error": str(status) if failed else None,
            "index_jobs": jobs,
            "index_form": RepositoryIndexForm(),
            "search_form": ProjectSearchForm(initial={"mode": MODES[0]}),
            "can_index": self.has_change_permission(request, obj),
        }

    def _project_or_redirect(
        self, request: HttpRequest, object_id: str
    ) -> Project | HttpResponse:
        project = self.get_object(request, unquote(object_id))
        if project is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return project

    def _change_url(self, project: Project, anchor: str = "") -> str:
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[quote(project.pk)],
            current_app=self.admin_site.name,
        )
        return f"{url}#{anchor}" if anchor else url

    @staticmethod
    def _form_errors(form: forms.Form) -> str:
        return "; ".join(
            (
                f"{form.fields[name].label}: {' '.join(errors)}"
                if name in form.fields
                else " ".join(errors)
            )
            for name, errors in form.errors.items()
        )

    def index_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Start a background job indexing a repository, then show the project."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        found = self._project_or_redirect(request, object_id)
        if not isinstance(found, Project):
            return found
        if not self.has_change_permission(request, found):
            raise PermissionDenied
        form = RepositoryIndexForm(request.POST)
        if not form.is_valid():
            messages.error(request, f"Nothing was indexed. {self._form_errors(form)}")
            return HttpResponseRedirect(self._change_url(found, "project-index"))
        try:
            job = index_job_start(
                project=found,
                repo_path=form.cleaned_data["repo_path"],
                force_reindex=form.cleaned_data["force_reindex"],
            )
        except (IndexingError, RegistryError) as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._change_url(found, "project-index"))
        except DatabaseError as exc:
            messages.error(
                request,
                f"The job could not be recorded: {exc}. Check that the database "
                "server is running, then try again.",
            )
            return HttpResponseRedirect(self._change_url(found, "project-index"))
        verb = "Reindexing" if job.force_reindex else "Indexing"
        messages.success(
            request,
            f"{verb} {job.repo_path} in the background (job {job.id}); "
            "reload this page to follow it under Recent jobs.",
        )
        return HttpResponseRedirect(self._change_url(found, "project-jobs"))

    def search_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Search the project's code and show the results under a search box."""
        found = self._project_or_redirect(request, object_id)
        if not isinstance(found, Project):
            return found
        if not self.has_view_or_change_permission(request, found):
            raise PermissionDenied
        form = ProjectSearchForm(request.GET or None, initial={"mode": MODES[0]})
        response = None
        if form.is_bound and not form.is_valid():
            messages.error(request, f"Nothing was searched. {self._form_errors(form)}")
        elif form.is_bound and form.cleaned_data["q"]:
            try:
                response = chunk_search(
                    project=found,
                    query=form.cleaned_data["q"],
                    mode=form.cleaned_data["mode"] or MODES[0],
                    limit=SEARCH_LIMIT,
                )
            except (SearchError, IndexingError, RegistryError) as exc:
                messages.error(request, str(exc))
            except DatabaseError as exc:
                messages.error(
                    request,
                    f"The database of project {found.name!r} could not be searched: "
                    f"{exc}. Check that it exists and the server is running.",
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": found,
            "title": f"Search {found.name}",
            "search_form": form,
            "search": response,
            "has_view_permission": self.has_view_permission(request, found),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.search_template, context)

    def delete_model(self, request, obj: Project):
        project_delete(project=obj)

    def delete_queryset(self, request, queryset):
        for project in queryset:
            project_delete(project=project)


class _Refused(Exception):
    """Raise out of save_model to abandon an add the registry refused."""


class ApiTokenForm(forms.ModelForm):
    """A token's name, permission and projects; the secret is made on save."""

    class Meta:
        model = ApiToken
        fields = ["name", "permission", "all_projects", "projects"]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_projects") and not cleaned.get("projects"):
            raise forms.ValidationError(
                "Choose the projects the token covers, or tick “all projects”."
            )
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: created here (shown once), revoked by an action; never shown again."""

    form = ApiTokenForm
    list_display = [
        "name",
        "prefix",
        "permission",
        "all_projects",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["permission", "all_projects"]
    search_fields = ["name", "prefix"]
    filter_horizontal = ["projects"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def get_fields(self, request, obj=None):
        fields = ["name", "permission", "all_projects", "projects"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    def save_model(self, request, obj: ApiToken, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, plaintext = apitoken_create(
            name=form.cleaned_data["name"],
            permission=form.cleaned_data["permission"],
            projects=None
            if form.cleaned_data["all_projects"]
            else list(form.cleaned_data["projects"]),
        )
        obj.pk, obj.prefix = token.pk, token.prefix
        messages.warning(
            request,
            f"The token {token.name!r} is {plaintext} — copy it now: it is stored "
            "only as a hash and will not be shown again.",
        )

    def save_related(self, request, form, formsets, change):
        # A new token's projects were set by apitoken_create.
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description="Revoke the selected tokens")
    def revoke_selected(self, request, queryset):
        for token in queryset:
            apitoken_revoke(token=token)
        messages.success(request, f"Revoked {queryset.count()} token(s).")
