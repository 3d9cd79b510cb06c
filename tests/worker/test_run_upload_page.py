"""Uploading a run made elsewhere through the researcher's page; a worker scores it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from studyplatform.researchers import researcher_create
from tests.worker.runs_helpers import tiny_dataset, wait_for_run
from tests.worker.test_uploaded_runs import _base, _csv, _gray, _run_files, _zip
from worker.models import ModelRun


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return client


@pytest.fixture
def ada(researcher_client, django_user_model):
    """The logged-in researcher, who owns the data sets and runs."""
    return django_user_model.objects.get(username="ada")


def _post(client, dataset, archive_bytes: bytes, name="elsewhere"):
    return client.post(
        reverse("run_upload"),
        {
            "name": name,
            "dataset": dataset.pk,
            "colour_space": "lab",
            "archive": SimpleUploadedFile("run.zip", archive_bytes),
        },
    )


@pytest.mark.django_db
def test_upload_page_needs_a_login(client):
    response = client.get(reverse("run_upload"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_uploaded_run_is_scored_by_the_worker(researcher_client, ada, celery_worker, tmp_path):
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset, colourise=_gray)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows)).read_bytes()
    response = _post(researcher_client, dataset, archive)
    run = ModelRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("run_detail", args=[run.pk])
    run = wait_for_run(run.pk, timeout=60)
    assert run.status == "done" and run.kind == "uploaded"
    assert run.metrics["test"]["n"] == len(rows) and run.metrics["test"]["l1"] > 0


@pytest.mark.django_db
def test_bad_upload_shows_the_reasons_and_keeps_nothing(researcher_client, ada, tmp_path, settings):
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    rows[0]["image_id"] = "999999"
    archive = _zip(tmp_path / "run.zip", files, _csv(rows)).read_bytes()
    response = _post(researcher_client, dataset, archive)
    page = response.content.decode()
    assert response.status_code == 200 and "The upload was refused" in page
    assert "999999" in page
    assert not ModelRun.objects.exists() and _run_files(settings) == []


@pytest.mark.django_db
def test_not_a_zip_is_refused_by_the_form(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    response = _post(researcher_client, dataset, b"plain text")
    assert "This is not a zip archive." in response.content.decode()
    assert not ModelRun.objects.exists()
