"""Uploading a run made elsewhere through the researcher's page: the request only stores
the zip; a worker checks it (the job page shows its progress), then scores the run."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from colourmodels.data.archives import ZipLimits
from studyplatform.researchers import researcher_create
from tests.worker.runs_helpers import tiny_dataset, wait_for_run
from tests.worker.test_uploaded_runs import _base, _csv, _gray, _run_files, _zip
from tests.worker.worker_processes import thread_worker, wait_for
from worker.models import ColourisedImage, ImportJob, ModelRun


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return client


@pytest.fixture
def ada(researcher_client, django_user_model):
    """The logged-in researcher, who owns the data sets and runs."""
    return django_user_model.objects.get(username="ada")


def _post(client, dataset, archive_bytes: bytes, name="elsewhere", manifest: str | None = None):
    data = {
        "name": name,
        "dataset": dataset.pk,
        "colour_space": "lab",
        "archive": SimpleUploadedFile("run.zip", archive_bytes),
    }
    if manifest is not None:
        data["manifest"] = SimpleUploadedFile("rows.csv", manifest.encode())
    return client.post(reverse("run_upload"), data)


def _posted_job(response) -> ImportJob:
    """The job the POST made: it redirects to the job's page at once, and extracted
    nothing (no run, no colourised image, no file of a run); the upload is in storage."""
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import_job", args=[job.pk])
    assert job.kind == "run" and job.status == "queued"
    assert not ModelRun.objects.exists() and not ColourisedImage.objects.exists()
    assert default_storage.exists(job.upload)
    return job


def _ended(job: ImportJob) -> ImportJob:
    """The job once it ended and its stored upload was deleted (just after)."""
    ended = ImportJob.objects.filter(pk=job.pk, status__in=("done", "failed"))
    gone = (job.upload, *([job.manifest] if job.manifest else []))
    return wait_for(
        lambda: not any(map(default_storage.exists, gone)) and ended.first(), "the job to end"
    )


def _imports_left(settings) -> list[str]:
    root = os.path.join(settings.MEDIA_ROOT, "imports")
    return os.listdir(root) if os.path.isdir(root) else []


@pytest.mark.django_db
def test_upload_page_needs_a_login(client):
    response = client.get(reverse("run_upload"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_uploaded_run_is_checked_then_scored_by_the_worker(researcher_client, ada, tmp_path):
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset, colourise=_gray)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows)).read_bytes()
    job = _posted_job(_post(researcher_client, dataset, archive))
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "Checking the run “elsewhere”" in page and "0 / 0 images checked" in page
    with thread_worker():
        job = _ended(job)
        assert job.status == "done", job.error
        assert (job.done, job.total) == (len(rows), len(rows))
        page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
        assert reverse("run_detail", args=[job.run_id]) in page
        assert f"{len(rows)} / {len(rows)} images checked" in page
        status = researcher_client.get(reverse("import_job_status", args=[job.pk])).json()
        assert status["run_url"] == reverse("run_detail", args=[job.run_id])
        run = wait_for_run(job.run_id, timeout=60)
    assert run.status == "done" and run.kind == "uploaded" and run.owner == ada
    assert run.metrics["test"]["n"] == len(rows) and run.metrics["test"]["l1"] > 0


@pytest.mark.django_db(transaction=True)
def test_bad_upload_shows_the_reasons_and_keeps_nothing(researcher_client, ada, tmp_path, settings):
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    rows[0]["image_id"] = "999999"
    rows[1]["file"] = "nowhere.png"
    archive = _zip(tmp_path / "run.zip", files).read_bytes()  # the manifest comes apart
    job = _posted_job(_post(researcher_client, dataset, archive, manifest=_csv(rows)))
    assert default_storage.exists(job.manifest)
    with thread_worker():
        job = _ended(job)
    assert job.status == "failed" and len(job.problems) == 2
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "The upload was refused" in page
    assert "999999" in page and "rows.csv line 2" in page
    assert "nowhere.png" in page and "rows.csv line 3" in page
    status = researcher_client.get(reverse("import_job_status", args=[job.pk])).json()
    assert status["problems"] == job.problems and status["run_url"] is None
    assert not ModelRun.objects.exists() and _run_files(settings) == []
    assert _imports_left(settings) == []


@pytest.mark.django_db(transaction=True)
def test_hostile_zip_is_refused_on_the_job_page(researcher_client, ada, tmp_path, settings):
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    files["../../etc/evil.png"] = files[rows[0]["file"]]
    archive = _zip(tmp_path / "run.zip", files, _csv(rows)).read_bytes()
    job = _posted_job(_post(researcher_client, dataset, archive))
    with thread_worker():
        job = _ended(job)
    assert job.status == "failed"
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "The upload was refused" in page and "../../etc/evil.png" in page
    assert not ModelRun.objects.exists() and _run_files(settings) == []
    assert _imports_left(settings) == []


def expanding_zip(files: dict[str, bytes], manifest: str | None = None) -> bytes:
    """A zip (with ``files``) that expands about 18 times (4 MiB of noise that does not
    compress, 70 MiB of zeros that do): over the total floor of 64 MiB, within the default
    ratio of 20, over a ratio of 10."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        if manifest is not None:
            zf.writestr("manifest.csv", manifest)
        zf.writestr("padding/noise.bin", os.urandom(4 * 2**20))
        zf.writestr("padding/zeros.bin", bytes(70 * 2**20))
    archive = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        expands_to = sum(info.file_size for info in zf.infolist())
    assert ZipLimits(max_total_ratio=20).expansion_limit(len(archive)) >= expands_to
    assert ZipLimits(max_total_ratio=10).expansion_limit(len(archive)) < expands_to
    return archive


@pytest.mark.django_db(transaction=True)
def test_a_zip_expanding_beyond_the_setting_is_refused(researcher_client, ada, settings):
    settings.UPLOAD_MAX_EXPANSION_RATIO = 10
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    job = _posted_job(_post(researcher_client, dataset, expanding_zip(files, _csv(rows))))
    with thread_worker():
        job = _ended(job)
    assert job.status == "failed"
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "The upload was refused" in page and "total uncompressed size over the limit" in page
    assert "may expand to 10 times its size" in page
    assert not ModelRun.objects.exists() and _run_files(settings) == []


@pytest.mark.django_db
def test_another_researcher_cannot_see_the_job(researcher_client, ada, client, tmp_path):
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows)).read_bytes()
    job = _posted_job(_post(researcher_client, dataset, archive))
    assert researcher_client.get(reverse("import_job", args=[job.pk])).status_code == 200
    client.force_login(researcher_create(username="bob", password="a-long-Passphrase-2"))
    assert client.get(reverse("import_job", args=[job.pk])).status_code == 404
    assert client.get(reverse("import_job_status", args=[job.pk])).status_code == 404
    default_storage.delete(job.upload)


@pytest.mark.django_db
def test_not_a_zip_is_refused_by_the_form(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    response = _post(researcher_client, dataset, b"plain text")
    assert "This is not a zip archive." in response.content.decode()
    assert not ModelRun.objects.exists() and not ImportJob.objects.exists()
