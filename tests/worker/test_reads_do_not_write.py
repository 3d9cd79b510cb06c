"""Reading a page never writes: every GET of the data set and model run pages, their
polling JSON and their images leaves the database as it was, also with a silent run that
the stale-work sweep would change (the sweep is the worker's beat's job, every minute)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from studyplatform.researchers import researcher_create
from tests.worker.runs_helpers import queued_run, tiny_dataset
from worker.models import ColourisedImage, ImportJob, ModelRun, SubModel
from worker.tasks import sweep_stale_runs

PASSWORD = "a-long-Passphrase-1"
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password=PASSWORD))
    return client


@pytest.fixture
def ada(researcher_client, django_user_model):
    """The logged-in researcher, who owns the data sets, runs and imports."""
    return django_user_model.objects.get(username="ada")


def _jpeg(size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 40, 10)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _stale_run(dataset, name: str, owner=None) -> ModelRun:
    """A running run whose worker went silent long ago, on its last attempt: the sweep
    would fail it."""
    run = queued_run(dataset, name=name, owner=owner)
    ModelRun.objects.filter(pk=run.pk).update(status="running")
    silent = timezone.now() - timedelta(seconds=django_settings.RUN_STALE_AFTER_SECONDS + 60)
    SubModel.objects.filter(run=run).update(
        status="running", heartbeat_at=silent, attempts=django_settings.RUN_MAX_ATTEMPTS
    )
    return run


def _state() -> list:
    """What a write would change: the runs' and sub-models' state, row counts."""
    return [
        list(ModelRun.objects.order_by("pk").values_list("pk", "status", "failure_reason")),
        list(SubModel.objects.order_by("pk").values_list("pk", "status", "heartbeat_at")),
        ImportJob.objects.count(),
        ColourisedImage.objects.count(),
    ]


@pytest.mark.django_db
def test_gets_of_every_worker_page_leave_the_database_unchanged(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    stale = _stale_run(dataset, "silent", owner=ada)
    other = queued_run(dataset, name="other", kind="ensemble", owner=ada)
    source = dataset.images.filter(split="test").first()
    name = default_storage.save("runs/upload/out.jpg", ContentFile(_jpeg()))
    output = ColourisedImage.objects.create(run=stale, source=source, file=name)
    job = ImportJob.objects.create(
        name="zip", upload="uploads/x.zip", original_filename="x.zip", created_by=ada
    )
    urls = [
        reverse("datasets"),
        reverse("dataset_detail", args=[dataset.pk]),
        reverse("dataset_manifest", args=[dataset.pk]),
        reverse("dataset_test_zip", args=[dataset.pk]),
        reverse("dataset_image_thumbnail", args=[source.pk]),
        reverse("import_job", args=[job.pk]),
        reverse("import_job_status", args=[job.pk]),
        reverse("runs"),
        reverse("runs_status"),
        reverse("runs_status") + f"?ids={stale.pk}",
        reverse("run_detail", args=[stale.pk]),
        reverse("run_status", args=[stale.pk]),
        reverse("runs_compare") + f"?a={stale.pk}&b={other.pk}",
        reverse("run_launch"),
        reverse("run_launch") + f"?dataset={dataset.pk}",
        reverse("run_outputs_zip", args=[stale.pk]),
        reverse("run_upload"),
        reverse("dataset_upload"),
        reverse("run_output_image", args=[output.pk]),
        reverse("run_output_truth", args=[output.pk]),
    ]
    before = _state()
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            response = researcher_client.get(url)
        assert response.status_code == 200, url
        writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]
        assert writes == [], (url, writes)
    assert _state() == before
    stale.refresh_from_db()
    assert stale.status == "running" and not stale.failure_reason


@pytest.mark.django_db
def test_the_beat_sweeps_silent_runs_and_the_pages_then_show_why(researcher_client, ada):
    schedule = django_settings.CELERY_BEAT_SCHEDULE["sweep-stale-runs"]
    assert schedule == {"task": "cpu.sweep_stale_runs", "schedule": 60.0}
    assert sweep_stale_runs.name == schedule["task"]
    run = _stale_run(tiny_dataset(owner=ada), "silent", owner=ada)
    assert "no heartbeat" not in researcher_client.get(reverse("runs")).content.decode()
    actions = sweep_stale_runs()  # what the beat runs on the worker, called here directly
    assert actions == [f"failed generator of run {run.pk}"]
    run.refresh_from_db()
    assert run.status == "failed" and "no heartbeat" in run.failure_reason
    assert "no heartbeat" in researcher_client.get(reverse("runs")).content.decode()
    status = researcher_client.get(reverse("run_status", args=[run.pk])).json()
    assert status["status"] == "failed" and "no heartbeat" in status["failure_reason"]


@pytest.mark.django_db
def test_an_uploaded_jpeg_output_is_served_as_jpeg_and_a_png_as_png(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    run = queued_run(dataset, owner=ada)
    sources = list(dataset.images.filter(split="test")[:2])
    png = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 40, 200)).save(png, format="PNG")
    for source, data, expected in (
        (sources[0], _jpeg(), "image/jpeg"),
        (sources[1], png.getvalue(), "image/png"),
    ):
        name = default_storage.save(f"runs/x/{source.pk}.img", ContentFile(data))
        output = ColourisedImage.objects.create(run=run, source=source, file=name)
        response = researcher_client.get(reverse("run_output_image", args=[output.pk]))
        assert response["Content-Type"] == expected
        assert response.content == data
        assert Image.open(io.BytesIO(response.content)).format == expected.split("/")[1].upper()
