"""The researcher's data set pages, and zip uploads imported by a real Celery worker."""

from __future__ import annotations

import io
import tempfile
import time
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from studyplatform.researchers import researcher_create
from tests.worker.test_dataset_import import _jpeg_bytes
from worker.models import Dataset, ImportJob


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return client


@pytest.fixture
def ada(researcher_client, django_user_model):
    """The logged-in researcher, who owns the data sets and runs."""
    return django_user_model.objects.get(username="ada")


def _zip_bytes(members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _wait_for(job_id: int, timeout: float = 60.0) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ImportJob.objects.get(pk=job_id)
        if job.status in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"import job {job_id} did not finish: {job.status}")


@pytest.mark.django_db
def test_pages_need_a_login(client):
    for url in (reverse("datasets"), reverse("dataset_upload")):
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.django_db
def test_list_and_detail_show_counts_and_thumbnails(researcher_client, ada):
    call_command(
        "make_synthetic",
        *("--per-category", "5", "--size", "32", "--name", "syn", "--owner", ada.username),
    )
    dataset = Dataset.objects.get(name="syn")
    page = researcher_client.get(reverse("datasets")).content.decode()
    assert "syn" in page and "Synthetic scenes" in page and "30 images" in page
    detail = researcher_client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    for category in dataset.categories:
        assert f"<h3>{category}</h3>" in detail
    image = dataset.images.first()
    thumb_url = reverse("dataset_image_thumbnail", args=[image.pk])
    assert thumb_url in detail
    response = researcher_client.get(thumb_url)
    assert response["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (32, 32)


@pytest.mark.django_db
def test_manifest_lists_every_image_with_category_and_split(researcher_client, ada):
    call_command(
        "make_synthetic",
        *("--per-category", "10", "--size", "32", "--name", "syn", "--owner", ada.username),
    )
    dataset = Dataset.objects.get(name="syn")
    url = reverse("dataset_manifest", args=[dataset.pk])
    rows = researcher_client.get(url).content.decode().splitlines()
    assert rows[0] == "image_id,original_name,category,split,width,height"
    assert len(rows) == 1 + 60
    assert {r.split(",")[3] for r in rows[1:]} == {"train", "val", "test"}


@pytest.mark.django_db
def test_upload_form_rejects_what_is_not_a_zip(researcher_client):
    response = researcher_client.post(
        reverse("dataset_upload"),
        {
            "name": "x",
            "seed": 0,
            "archive": SimpleUploadedFile("photos.zip", b"not a zip at all"),
        },
    )
    assert response.status_code == 200
    assert "This is not a zip archive." in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_upload_form_refuses_a_zip_with_no_images(researcher_client):
    members = [("notes/readme.txt", b"hello"), ("__MACOSX/._a.jpg", b"x"), (".hidden.png", b"x")]
    response = researcher_client.post(
        reverse("dataset_upload"),
        {
            "name": "x",
            "seed": 0,
            "archive": SimpleUploadedFile("photos.zip", _zip_bytes(members)),
        },
    )
    assert response.status_code == 200
    assert "This zip holds no images (files ending in .bmp" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "seed, error",
    [
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("1" * 20, "Ensure this value is less than or equal to 2147483647."),
        (str(2**31), "Ensure this value is less than or equal to 2147483647."),
    ],
)
def test_upload_form_refuses_a_seed_the_import_cannot_use(researcher_client, seed, error):
    members = [("city/0.jpg", _jpeg_bytes("city", 0))]
    response = researcher_client.post(
        reverse("dataset_upload"),
        {
            "name": "x",
            "seed": seed,
            "archive": SimpleUploadedFile("photos.zip", _zip_bytes(members)),
        },
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_uploaded_zip_is_imported_by_the_worker(researcher_client, celery_worker):
    members = [(f"{c}/{i}.jpg", _jpeg_bytes(c, i)) for c in ("city", "nature") for i in range(5)]
    response = researcher_client.post(
        reverse("dataset_upload"),
        {
            "name": "uploaded",
            "seed": 1,
            "categories_from_folders": "on",
            "archive": SimpleUploadedFile("photos.zip", _zip_bytes(members)),
        },
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "import_job", args=[job.pk]
    )
    job = _wait_for(job.pk)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (10, 10)
    assert job.dataset.categories == ["city", "nature"] and job.dataset.total == 10
    status = researcher_client.get(reverse("import_job_status", args=[job.pk])).json()
    assert status["status"] == "done" and status["dataset_url"].endswith(f"/{job.dataset_id}/")


def _gray_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (48, 48), 120).save(buffer, format="JPEG")
    return buffer.getvalue()


def _imported_job(ada, members) -> ImportJob:
    """``members`` zipped and imported by the import's own service, as the worker runs it."""
    from worker.services.imports import import_job_run

    stored = default_storage.save("imports/photos.zip", ContentFile(_zip_bytes(members)))
    job = ImportJob.objects.create(
        name="photos", upload=stored, original_filename="photos.zip", created_by=ada
    )
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_the_import_page_says_how_many_were_imported_and_skipped_and_why(researcher_client, ada):
    photos = [(f"city/{i}.jpg", _jpeg_bytes("city", i)) for i in range(24)]
    gray = [("city/gray.jpg", _gray_jpeg())]
    other = [("city/notes.txt", b"x"), ("city/readme.md", b"y"), ("city/table.csv", b"z")]
    job = _imported_job(ada, photos + gray + other)
    # The reader leaves out the three files that are not images; 25 images are checked.
    assert (job.status, job.done, job.total) == ("done", 25, 25)
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "24 images imported, 4 files skipped" in page
    assert "<li>not an image file: 3</li><li>grayscale: 1</li>" in page
    skipped_files = reverse("dataset_detail", args=[job.dataset_id]) + "#import"
    assert f'href="{skipped_files}"' in page
    assert 'id="job-counts" hidden' in page  # not "25 / 25 images checked"
    status = researcher_client.get(reverse("import_job_status", args=[job.pk])).json()
    assert status["outcome"] == {
        "text": "24 images imported, 4 files skipped",
        "reasons": ["not an image file: 3", "grayscale: 1"],
        "skipped_url": skipped_files,
    }
    # The same numbers as the data set's page, where the skipped files are named.
    dataset_page = researcher_client.get(skipped_files).content.decode()
    assert "<dt>imported</dt><dd>24</dd>" in dataset_page
    assert 'id="import"' in dataset_page  # in the same order (PostgreSQL's JSON has its own)
    assert "<dt>skipped</dt><dd>4 (not an image file: 3, grayscale: 1)</dd>" in dataset_page


@pytest.mark.django_db
def test_an_import_that_skipped_nothing_says_so(researcher_client, ada):
    job = _imported_job(ada, [(f"city/{i}.jpg", _jpeg_bytes("city", i)) for i in range(3)])
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "3 images imported, none skipped" in page
    assert 'id="job-skipped-link" hidden' in page


@pytest.mark.django_db(transaction=True)
def test_hostile_upload_fails_with_the_reason_and_no_data_set(researcher_client, celery_worker):
    archive = _zip_bytes([("a.jpg", _jpeg_bytes("city", 1)), ("../../etc/evil.jpg", b"x")])
    researcher_client.post(
        reverse("dataset_upload"),
        {"name": "evil", "seed": 0, "archive": SimpleUploadedFile("evil.zip", archive)},
    )
    job = _wait_for(ImportJob.objects.get().pk)
    assert job.status == "failed" and "../../etc/evil.jpg" in job.error
    # Named by the file's name, not by the worker's temporary path.
    assert job.error.startswith("upload.zip: member") and "/tmp" not in job.error
    assert tempfile.gettempdir() not in job.error and "import-" not in job.error
    assert not Dataset.objects.exists()
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "failed" in page and "evil.jpg" in page


@pytest.mark.django_db(transaction=True)
def test_a_zip_expanding_beyond_the_setting_is_refused(researcher_client, celery_worker, settings):
    from tests.worker.test_run_upload_page import expanding_zip

    settings.UPLOAD_MAX_EXPANSION_RATIO = 10
    archive = expanding_zip({"city/0.jpg": _jpeg_bytes("city", 0)})
    researcher_client.post(
        reverse("dataset_upload"),
        {"name": "padded", "seed": 0, "archive": SimpleUploadedFile("padded.zip", archive)},
    )
    job = _wait_for(ImportJob.objects.get().pk)
    assert job.status == "failed" and not Dataset.objects.exists()
    page = researcher_client.get(reverse("import_job", args=[job.pk])).content.decode()
    assert "total uncompressed size over the limit" in page
    assert "may expand to 10 times its size" in page
