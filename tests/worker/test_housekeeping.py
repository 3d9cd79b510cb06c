"""Deleting and archiving data sets, runs and uploads from their pages: what the
confirmation says, each safeguard in words, the files removed from storage (and no one
else's), after the commit only, a second press harmless, owners only; archived ones leave
the lists and the choices of new work and can be restored."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import Client
from django.urls import reverse

from studyplatform.deletion import DeletionRefused
from studyplatform.researchers import researcher_create
from survey.services.studies import study_create
from tests.survey.study_helpers import uploaded_run
from tests.worker.runs_helpers import queued_run, tiny_dataset
from worker.models import (
    ColourisedImage,
    Dataset,
    DatasetImage,
    DatasetShare,
    ImportJob,
    ModelRun,
    RunShare,
    SubModel,
)
from worker.services.housekeeping import run_delete
from worker.services.runs import model_run_cancel

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def alice():
    return researcher_create(username="alice", password=PASSWORD)


@pytest.fixture
def bob():
    return researcher_create(username="bob", password=PASSWORD)


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _media() -> Path:
    return Path(settings.MEDIA_ROOT)


def _files_under(folder: str) -> set[str]:
    root = _media() / folder
    return {str(p.relative_to(_media())) for p in root.rglob("*") if p.is_file()}


def _all_files() -> set[str]:
    return {str(p.relative_to(_media())) for p in _media().rglob("*") if p.is_file()}


def _confirm(client: Client, name: str, pk: int, **extra):
    return client.post(reverse(name, args=[pk]), {"confirm": "yes", **extra})


def _messages(response) -> str:
    return " ".join(str(m) for m in response.wsgi_request._messages)


def test_deleting_a_data_set_removes_its_images_and_files_and_nothing_else(
    alice, django_capture_on_commit_callbacks
):
    doomed = tiny_dataset("doomed", per_category=10, owner=alice)
    kept = tiny_dataset("kept", per_category=10, owner=alice)
    folder = f"datasets/{doomed.uid.hex}"
    doomed_files = _files_under(folder)
    n_images = doomed.images.count()
    assert len(doomed_files) == n_images > 0
    others = _all_files() - doomed_files
    client = _as(alice)

    page = client.get(reverse("dataset_delete", args=[doomed.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert f"{n_images} images" in text and f"{n_images} stored files" in text
    assert "Delete for good" in text

    with django_capture_on_commit_callbacks(execute=True):
        response = _confirm(client, "dataset_delete", doomed.pk)
    assert response.status_code == 302 and response["Location"] == reverse("datasets")
    assert f"Deleted the data set “doomed”: {n_images} images" in _messages(response)
    assert not Dataset.objects.filter(pk=doomed.pk).exists()
    assert not DatasetImage.objects.filter(dataset_id=doomed.pk).exists()
    assert not (_media() / folder).exists()
    assert _all_files() == others  # the other data set's files are all there
    assert kept.images.count() and _files_under(f"datasets/{kept.uid.hex}")


def test_a_data_set_used_by_runs_is_not_deleted_and_the_runs_are_named(alice, bob, tmp_path):
    dataset = tiny_dataset("used", per_category=10, owner=alice)
    uploaded_run(dataset, tmp_path, name="alice-run", owner=alice)
    DatasetShare.objects.create(dataset=dataset, user=bob, level="view")
    queued_run(dataset, name="bob-secret-run", owner=bob)  # alice cannot see it
    files = _all_files()
    client = _as(alice)

    text = client.get(reverse("dataset_delete", args=[dataset.pk])).content.decode()
    assert "It cannot be deleted now" in text
    assert "used by 2 model runs: “alice-run”, 1 other run you cannot see" in text
    assert "bob-secret-run" not in text and "Delete for good" not in text

    response = _confirm(client, "dataset_delete", dataset.pk)
    assert response["Location"] == reverse("dataset_detail", args=[dataset.pk])
    assert "Nothing was deleted. It is used by 2 model runs" in _messages(response)
    assert Dataset.objects.filter(pk=dataset.pk).exists() and _all_files() == files


def _with_checkpoints(run: ModelRun) -> list[str]:
    """Weights in storage as training leaves them (and records in ``artefacts``)."""
    folder = f"{run.storage_prefix}/generator-all"
    names = [
        default_storage.save(f"{folder}/{leaf}", ContentFile(b"w" * 1000))
        for leaf in ("best.pt", "last.pt", "checkpoint.pt")
    ]
    SubModel.objects.filter(run=run).update(
        artefacts={"best": names[0], "last": names[1], "checkpoint": names[2]}
    )
    return names


def test_deleting_a_run_removes_its_outputs_and_weights_and_nothing_else(
    alice, tmp_path, django_capture_on_commit_callbacks
):
    dataset = tiny_dataset("runs-data", per_category=10, owner=alice)
    doomed = uploaded_run(dataset, tmp_path, name="doomed-run", owner=alice)
    kept = uploaded_run(dataset, tmp_path, name="kept-run", owner=alice)
    SubModel.objects.create(run=doomed, role="generator", category="", status="done")
    weights = _with_checkpoints(doomed)
    doomed_files = _files_under(doomed.storage_prefix)
    n_outputs = doomed.outputs.count()
    assert n_outputs and set(weights) <= doomed_files
    others = _all_files() - doomed_files
    client = _as(alice)

    text = client.get(reverse("run_delete", args=[doomed.pk])).content.decode()
    assert f"{n_outputs} colourised images" in text and "1 sub-model" in text
    assert f"{len(doomed_files)} stored files" in text

    with django_capture_on_commit_callbacks(execute=True):
        response = _confirm(client, "run_delete", doomed.pk)
    assert response["Location"] == reverse("runs")
    assert not ModelRun.objects.filter(pk=doomed.pk).exists()
    assert not ColourisedImage.objects.filter(run_id=doomed.pk).exists()
    assert not (_media() / doomed.storage_prefix).exists()
    assert _all_files() == others
    assert kept.outputs.count() and Dataset.objects.filter(pk=dataset.pk).exists()


def test_a_run_still_training_must_be_cancelled_first(alice):
    dataset = tiny_dataset("active-data", per_category=10, owner=alice)
    run = queued_run(dataset, name="training", owner=alice)
    client = _as(alice)
    text = client.get(reverse("run_delete", args=[run.pk])).content.decode()
    assert "It is still queued: cancel it first" in text
    response = _confirm(client, "run_delete", run.pk)
    assert "Nothing was deleted. It is still queued" in _messages(response)
    assert ModelRun.objects.filter(pk=run.pk).exists()

    model_run_cancel(run=run)
    assert ModelRun.objects.get(pk=run.pk).status == ModelRun.Status.CANCELLED
    response = _confirm(client, "run_delete", run.pk)
    assert response["Location"] == reverse("runs")
    assert not ModelRun.objects.filter(pk=run.pk).exists()


def test_a_run_in_a_study_is_not_deleted_and_the_study_is_named(alice, tmp_path):
    dataset = tiny_dataset("study-data", per_category=10, owner=alice)
    run = uploaded_run(dataset, tmp_path, name="in-a-study", owner=alice)
    study_create(name="The pilot", runs=[run], user=alice, images_per_participant=2)
    client = _as(alice)
    text = client.get(reverse("run_delete", args=[run.pk])).content.decode()
    assert "It is a condition of 1 study: “The pilot”" in text
    response = _confirm(client, "run_delete", run.pk)
    assert "Nothing was deleted. It is a condition of 1 study" in _messages(response)
    assert ModelRun.objects.filter(pk=run.pk).exists()


def test_files_go_only_when_the_deletion_commits(
    alice, tmp_path, django_capture_on_commit_callbacks
):
    dataset = tiny_dataset("rollback-data", per_category=10, owner=alice)
    run = uploaded_run(dataset, tmp_path, name="rolled-back", owner=alice)
    files = _all_files()

    class Boom(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Boom), transaction.atomic():
            run_delete(run=run, user=alice)
            raise Boom
    assert callbacks == []
    assert ModelRun.objects.filter(pk=run.pk).exists() and _all_files() == files


def test_a_second_press_finds_nothing_in_words(alice, tmp_path):
    dataset = tiny_dataset("twice", per_category=10, owner=alice)
    client = _as(alice)
    assert _confirm(client, "dataset_delete", dataset.pk).status_code == 302
    again = _confirm(client, "dataset_delete", dataset.pk)
    assert again.status_code == 404
    assert "it may have been deleted" in again.content.decode()


def test_only_the_owner_deletes(alice, bob, tmp_path):
    dataset = tiny_dataset("shared", per_category=10, owner=alice)
    run = uploaded_run(dataset, tmp_path, name="shared-run", owner=alice)
    bob_client = _as(bob)
    for name, obj in (("dataset_delete", dataset), ("run_delete", run)):
        assert bob_client.get(reverse(name, args=[obj.pk])).status_code == 404
        assert _confirm(bob_client, name, obj.pk).status_code == 404
    DatasetShare.objects.create(dataset=dataset, user=bob, level="edit")
    RunShare.objects.create(run=run, user=bob, level="edit")
    for name, obj in (("run_delete", run), ("dataset_delete", dataset)):
        refused = _confirm(bob_client, name, obj.pk)
        assert refused.status_code == 403
        assert "Only its owner can delete this." in refused.content.decode()
    detail = bob_client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Only its owner can delete it." in detail and "Archive this run" in detail
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert ModelRun.objects.filter(pk=run.pk).exists()


def _job(user, status: str, **fields) -> ImportJob:
    upload = default_storage.save("imports/upload.zip", ContentFile(b"z" * 2048))
    return ImportJob.objects.create(
        name="photos",
        upload=upload,
        original_filename="photos.zip",
        status=status,
        created_by=user,
        **fields,
    )


def test_an_upload_still_being_checked_is_not_deleted(alice):
    job = _job(alice, ImportJob.Status.RUNNING)
    client = _as(alice)
    text = client.get(reverse("import_job_delete", args=[job.pk])).content.decode()
    assert "It is still running: wait until it has been checked." in text
    _confirm(client, "import_job_delete", job.pk)
    assert ImportJob.objects.filter(pk=job.pk).exists()
    assert default_storage.exists(job.upload)


def test_a_finished_upload_is_deleted_with_its_file_and_what_it_made_stays(
    alice, bob, django_capture_on_commit_callbacks
):
    dataset = tiny_dataset("made", per_category=10, owner=alice)
    job = _job(alice, ImportJob.Status.FAILED, error="not a zip")
    done = _job(alice, ImportJob.Status.DONE, dataset=dataset)
    client = _as(alice)
    assert _as(bob).get(reverse("import_job_delete", args=[job.pk])).status_code == 404
    page = client.get(reverse("import_job", args=[done.pk])).content.decode()
    assert "Delete this upload" in page
    text = client.get(reverse("import_job_delete", args=[done.pk])).content.decode()
    assert "What stays: the data set it made, “made”." in text
    with django_capture_on_commit_callbacks(execute=True):
        for each in (job, done):
            response = _confirm(client, "import_job_delete", each.pk)
            assert response["Location"] == reverse("datasets")
    assert not ImportJob.objects.filter(pk__in=[job.pk, done.pk]).exists()
    assert not default_storage.exists(job.upload) and not default_storage.exists(done.upload)
    assert Dataset.objects.filter(pk=dataset.pk).exists()


# --- Archiving --------------------------------------------------------------------------


def _archive(client: Client, name: str, pk: int, action: str = "archive"):
    return client.post(reverse(name, args=[pk]), {"action": action})


def test_an_archived_data_set_leaves_the_list_and_the_choices_and_comes_back(alice):
    dataset = tiny_dataset("old-photos", per_category=10, owner=alice)
    client = _as(alice)
    response = _archive(client, "dataset_archive", dataset.pk)
    assert response["Location"] == reverse("dataset_detail", args=[dataset.pk])
    assert "is archived" in _messages(response)
    assert "already archived" in _messages(_archive(client, "dataset_archive", dataset.pk))

    link = f'href="{reverse("dataset_detail", args=[dataset.pk])}"'
    listing = client.get(reverse("datasets")).content.decode()
    assert link not in listing and "Archived (1)" in listing
    archived = client.get(reverse("datasets") + "?archived=1").content.decode()
    assert link in archived and "Show the current ones" in archived
    for name in ("run_launch", "run_upload"):
        choices = client.get(reverse(name)).context["form"].fields["dataset"].queryset
        assert dataset not in choices, name
    detail = client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert "Archived on" in detail and "Restore this data set" in detail

    _archive(client, "dataset_archive", dataset.pk, "restore")
    assert link in client.get(reverse("datasets")).content.decode()
    assert dataset in client.get(reverse("run_launch")).context["form"].fields["dataset"].queryset


def test_an_archived_run_leaves_the_list_and_a_new_studys_choices(alice, tmp_path):
    dataset = tiny_dataset("arch-data", per_category=10, owner=alice)
    run = uploaded_run(dataset, tmp_path, name="old-run", owner=alice)
    draft = study_create(name="draft", runs=[run], user=alice, images_per_participant=2)
    client = _as(alice)
    _archive(client, "run_archive", run.pk)
    link = f'href="{reverse("run_detail", args=[run.pk])}"'
    assert link not in client.get(reverse("runs")).content.decode()
    assert link in client.get(reverse("runs") + "?archived=1").content.decode()
    assert run not in client.get(reverse("study_new")).context["form"].fields["runs"].queryset
    # Where it is used it keeps working: its page, and the draft that has it.
    assert client.get(reverse("run_detail", args=[run.pk])).status_code == 200
    form = client.get(reverse("study_edit", args=[draft.pk])).context["form"]
    assert run in form.fields["runs"].queryset
    # The pickers of comparisons leave it out, unless a link asks for it.
    other = uploaded_run(dataset, tmp_path, name="new-run", owner=alice)
    assert [
        r.pk for r in client.get(reverse("run_detail", args=[other.pk])).context["other_runs"]
    ] == []
    assert [r.pk for r in client.get(reverse("runs_compare")).context["runs"]] == [other.pk]
    asked = client.get(reverse("runs_compare") + f"?a={run.pk}&b={other.pk}")
    assert {r.pk for r in asked.context["runs"]} == {run.pk, other.pk}
    assert asked.context["comparison"]
    # The service refuses it for a new study, in words.
    with pytest.raises(Exception, match="an archived run cannot be chosen"):
        study_create(name="new", runs=[ModelRun.objects.get(pk=run.pk)], user=alice)


def test_archiving_needs_the_edit_level(alice, bob):
    dataset = tiny_dataset("view-only", per_category=10, owner=alice)
    assert _archive(_as(bob), "dataset_archive", dataset.pk).status_code == 404
    DatasetShare.objects.create(dataset=dataset, user=bob, level="view")
    assert _archive(_as(bob), "dataset_archive", dataset.pk).status_code == 403
    DatasetShare.objects.filter(dataset=dataset, user=bob).update(level="edit")
    assert _archive(_as(bob), "dataset_archive", dataset.pk).status_code == 302
    assert Dataset.objects.get(pk=dataset.pk).archived_at is not None


def test_a_deletion_refused_meanwhile_says_so(alice, tmp_path):
    dataset = tiny_dataset("race", per_category=10, owner=alice)
    gone = Dataset.objects.get(pk=dataset.pk)
    Dataset.objects.filter(pk=dataset.pk).delete()
    from worker.services.housekeeping import dataset_delete

    with pytest.raises(DeletionRefused, match="already deleted"):
        dataset_delete(dataset=gone, user=alice)
