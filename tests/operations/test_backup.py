"""Back up one project, drop it, restore it; refuse what must not be restored."""

import io
import json
import tarfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from indexing.services import repository_index
from operations.backup import project_backup, project_restore
from registry.databases import project_database_exists, project_database_names
from registry.exceptions import ProjectOperationRefused
from registry.models import Project
from registry.selectors import project_get
from tests.operations.conftest import FakeEmbedder, answers


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_backup_drop_restore_gives_identical_results(make_project, repo, tmp_path):
    project = make_project("archived", server="second", description="kept")
    repository_index(project=project, repo_path=str(repo))
    before = answers(project)
    archive = tmp_path / "archived.tar"

    manifest = json.loads(
        run("backupproject", "archived", "--output", str(archive), "--json")
    )
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["manifest.json", "database.dump"]
    assert manifest["project"]["name"] == "archived"
    assert manifest["embedding"]["dimension"] == 384
    assert manifest["schema"]["version"] == "0010_halfvec_vectors"
    assert manifest["tables"]["code_files"] == 4
    with pytest.raises(CommandError, match="exists"):
        call_command("backupproject", "archived", "--output", str(archive))

    run("dropproject", "archived", "--yes")
    assert not project_database_exists(
        database_name=project.database_name, server="second"
    )

    output = run("restoreproject", str(archive), "--server", "second")
    assert "Restored project 'archived'" in output
    restored = project_get(reference="archived")
    assert (restored.id, restored.database_name) == (project.id, project.database_name)
    assert (restored.server, restored.description) == ("second", "kept")
    assert answers(restored) == before

    with pytest.raises(CommandError, match="already exists.*--replace"):
        call_command("restoreproject", str(archive))

    report = project_restore(archive=archive, replace=True, server="default")
    assert report.replaced and report.project.id == project.id
    assert report.project.server == "default"
    assert report.project.database_name != project.database_name
    assert project.database_name not in project_database_names(server="second")
    assert answers(report.project) == before
    project_delete_all()


def test_a_backup_of_another_embedding_model_is_refused(make_project, repo, tmp_path):
    project = make_project("foreign-vectors", server="default")
    repository_index(project=project, repo_path=str(repo), embedder=FakeEmbedder())
    archive = tmp_path / "foreign.tar"
    project_backup(project=project, output=archive)
    databases = set(project_database_names()) | set(
        project_database_names(server="second")
    )

    with pytest.raises(ProjectOperationRefused, match="test-fake-16d \\(16-d\\)"):
        project_restore(archive=archive, name="foreign-copy")

    assert not Project.objects.filter(name="foreign-copy").exists()
    after = set(project_database_names()) | set(project_database_names(server="second"))
    assert after == databases


def test_a_backup_on_other_shipped_weights_restores_and_keeps_them(
    make_project, repo, tmp_path, settings
):
    settings.MINILM_WEIGHTS = "original"
    project = make_project("original-vectors", server="default")
    repository_index(project=project, repo_path=str(repo))
    before = answers(project)
    archive = tmp_path / "original.tar"
    project_backup(project=project, output=archive)
    settings.MINILM_WEIGHTS = "code"

    report = project_restore(archive=archive, name="original-copy")

    # Searched with the weights its vectors came from: the same answers.
    assert answers(report.project) == before
    project_delete_all()


def test_a_file_that_is_no_backup_is_refused(transactional_db, tmp_path):
    bogus = tmp_path / "bogus.tar"
    bogus.write_text("not a tar file")
    with pytest.raises(CommandError, match="cannot be read as a project backup"):
        call_command("restoreproject", str(bogus))


def project_delete_all() -> None:
    from registry.services import project_delete

    for project in Project.objects.all():
        project_delete(project=project)
