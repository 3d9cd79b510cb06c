"""The recovery service (worker.services.recovery) for each kind of background work of the
worker app: training, the evaluation of a trained run, the scoring of an uploaded run, the
import of a data set. A stale heartbeat (back-dated, as if the worker's machine went
silent), a lost broker (its queues emptied, then the restart's ``requeue_lost_work``) and a
duplicate delivery (the task sent twice): the work ends done, and is done once.

The workers here run in threads of the test process and are started per test, after the
rows and queues are set up (killed workers: test_recovery_killed.py)."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from studyplatform.launcher import requeue_lost_work
from tests.survey.study_helpers import uploaded_run
from tests.worker.runs_helpers import TINY, tiny_dataset, wait_for_run
from tests.worker.test_dataset_import import _jpeg_bytes
from tests.worker.worker_processes import purge_queues, thread_worker, wait_for
from worker.models import ColourisedImage, Dataset, EpochRecord, ImportJob, ModelRun, SubModel
from worker.services.imports import import_job_create, run_upload_job_create
from worker.services.recovery import recovery_sweep
from worker.services.runs import model_run_launch
from worker.tasks import (
    check_run_upload,
    evaluate_run,
    evaluate_upload,
    import_zip,
    train_submodel,
)

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(hours=1)


def _held_elsewhere(model, pk: int, *, silent: timedelta, attempts: int, **fields) -> None:
    """As if a worker on another machine (whose process cannot be looked up) claimed the row
    ``attempts`` times and was last heard of ``silent`` ago."""
    claim = {"claim_token": uuid.uuid4(), "worker": "another-machine:1"}
    claim["evaluation_attempts" if model is ModelRun else "attempts"] = attempts
    claim["heartbeat_at"] = timezone.now() - silent
    model.objects.filter(pk=pk).update(**claim, **fields)


def _trained_run(dataset) -> ModelRun:
    config = {**TINY, "epochs": 1, "early_stopping": None}
    run = model_run_launch(
        name="trained", kind="baseline", colour_space="lab", dataset=dataset, config=config
    )
    with thread_worker():
        run = wait_for_run(run.pk, timeout=120)
    assert run.status == "done", run.failure_reason
    return run


def _evaluated_once(run: ModelRun) -> None:
    """Done, with one colourised image per test image: one row and one file each."""
    run.refresh_from_db()
    assert run.status == "done" and run.failure_reason == "" and run.metrics["test"]["n"]
    tests = run.dataset.images.filter(split="test").count()
    assert ColourisedImage.objects.filter(run=run).count() == tests
    outputs = ColourisedImage.objects.filter(run=run)
    assert _files_under(f"{run.storage_prefix}/test") == set(outputs.values_list("file", flat=True))


def _files_under(folder: str) -> set[str]:
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return set()
    found = {f"{folder}/{name}" for name in files}
    for sub in folders:
        found |= _files_under(f"{folder}/{sub}")
    return found


def _zip_upload() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for category in ("city", "nature"):
            for i in range(5):
                archive.writestr(f"{category}/{i}.jpg", _jpeg_bytes(category, i))
    return SimpleUploadedFile("photos.zip", buffer.getvalue())


def _import_job(**fields) -> ImportJob:
    """A stored zip and its job, with no message sent for it."""
    stored = default_storage.save("imports/photos.zip", ContentFile(_zip_upload().read()))
    return ImportJob.objects.create(
        name="photos", upload=stored, original_filename="photos.zip", **fields
    )


def _imported_once(job: ImportJob) -> None:
    ended = ImportJob.objects.filter(pk=job.pk, status__in=("done", "failed"))
    # The worker deletes the uploaded zip just after it marks the job ended.
    job = wait_for(
        lambda: not default_storage.exists(job.upload) and ended.first(), "the import to end"
    )
    assert job.status == "done", job.error
    assert Dataset.objects.get().total == 10 and job.dataset == Dataset.objects.get()
    stored = set(job.dataset.images.values_list("file", flat=True))
    assert _files_under("datasets") == stored  # none from another attempt


# --------------------------------------------------------------------------------------
# The scoring of an uploaded run
# --------------------------------------------------------------------------------------


def test_a_stale_uploaded_run_is_scored_again_by_evaluate_upload(tmp_path):
    """The reported bug: the sweep sent it to gpu.evaluate_run, which failed with
    KeyError: 'image_size'."""
    run = uploaded_run(tiny_dataset(), tmp_path, name="up", evaluate=False)
    _held_elsewhere(ModelRun, run.pk, silent=LONG_AGO, attempts=1)
    with thread_worker():
        assert recovery_sweep() == [f"requeued the evaluation of uploaded run {run.pk}"]
        run = wait_for_run(run.pk, timeout=120)
    assert run.status == "done", run.failure_reason
    assert run.evaluation_attempts == 2 and run.claim_token is None
    assert all(o.metrics for o in ColourisedImage.objects.filter(run=run))


def test_an_uploaded_run_lost_with_the_broker_is_scored_after_the_restart(tmp_path):
    run = uploaded_run(tiny_dataset(), tmp_path, name="up", evaluate=False)
    _held_elsewhere(ModelRun, run.pk, silent=timedelta(0), attempts=1)
    purge_queues()
    assert requeue_lost_work(broker_is_new=True) == ["evaluation of uploaded run 'up'"]
    with thread_worker():
        run = wait_for_run(run.pk, timeout=120)
    assert run.status == "done", run.failure_reason
    assert run.evaluation_attempts == 2


def test_an_uploaded_run_delivered_twice_is_scored_once(tmp_path):
    run = uploaded_run(tiny_dataset(), tmp_path, name="up", evaluate=False)
    evaluate_upload.delay(run.pk)
    evaluate_upload.delay(run.pk)
    with thread_worker():
        run = wait_for_run(run.pk, timeout=120)
    assert run.status == "done" and run.evaluation_attempts == 1


def test_a_silent_scoring_is_failed_with_the_reason_after_its_attempts(tmp_path, settings):
    run = uploaded_run(tiny_dataset(), tmp_path, name="up", evaluate=False)
    _held_elsewhere(ModelRun, run.pk, silent=LONG_AGO, attempts=settings.RUN_MAX_ATTEMPTS)
    assert recovery_sweep() == [f"failed the evaluation of uploaded run {run.pk}"]
    run.refresh_from_db()
    assert run.status == "failed" and run.claim_token is None
    assert re.fullmatch(
        r"the evaluation stopped answering \(no heartbeat for 36\d\d s after 3 attempts\)",
        run.failure_reason,
    )


def test_a_queued_evaluation_is_left_to_its_message(tmp_path):
    """The sweep re-sent an evaluation that no worker had taken yet every 10 minutes; it
    now leaves unclaimed work to the message waiting in the broker."""
    run = uploaded_run(tiny_dataset(), tmp_path, name="up", evaluate=False)
    ModelRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    assert recovery_sweep() == []


# --------------------------------------------------------------------------------------
# The evaluation of a trained run
# --------------------------------------------------------------------------------------


def test_a_stale_evaluation_is_done_again_and_its_images_stored_once():
    run = _trained_run(tiny_dataset())
    leftover = default_storage.save(f"{run.storage_prefix}/test/left.png", ContentFile(b"x"))
    _held_elsewhere(ModelRun, run.pk, silent=LONG_AGO, attempts=1, status="evaluating")
    with thread_worker():
        assert recovery_sweep() == [f"requeued the evaluation of run {run.pk}"]
        run = wait_for_run(run.pk, timeout=120)
    _evaluated_once(run)
    assert run.evaluation_attempts == 2 and not default_storage.exists(leftover)


def test_an_evaluation_lost_with_the_broker_and_delivered_twice_is_done_once():
    run = _trained_run(tiny_dataset())
    _held_elsewhere(ModelRun, run.pk, silent=timedelta(0), attempts=1, status="evaluating")
    purge_queues()
    assert requeue_lost_work(broker_is_new=True) == ["evaluation of run 'trained'"]
    evaluate_run.delay(run.pk)  # and a duplicate
    with thread_worker():
        run = wait_for_run(run.pk, timeout=120)
    _evaluated_once(run)
    assert run.evaluation_attempts == 2


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def test_training_lost_with_the_broker_and_delivered_twice_is_trained_once():
    config = {**TINY, "epochs": 2, "early_stopping": None}
    run = model_run_launch(
        name="r", kind="baseline", colour_space="lab", dataset=tiny_dataset(), config=config
    )
    sm = run.submodels.get()
    SubModel.objects.filter(pk=sm.pk).update(
        status="running", claim_token=uuid.uuid4(), worker="another-machine:1", attempts=1
    )
    ModelRun.objects.filter(pk=run.pk).update(status="running")
    purge_queues()
    assert requeue_lost_work(broker_is_new=True) == ["training of run 'r' (1 to train)"]
    train_submodel.delay(sm.pk)  # and a duplicate
    with thread_worker():
        run = wait_for_run(run.pk, timeout=120)
    assert run.status == "done", run.failure_reason
    sm.refresh_from_db()
    assert sm.attempts == 2
    assert [r.values["attempt"] for r in EpochRecord.objects.filter(submodel=sm)] == [2, 2]


# --------------------------------------------------------------------------------------
# The import of a data set
# --------------------------------------------------------------------------------------


def test_a_stale_import_is_imported_again_and_the_lost_attempts_files_removed():
    job = _import_job()
    _held_elsewhere(ImportJob, job.pk, silent=LONG_AGO, attempts=1, status="running")
    job.refresh_from_db()
    lost = default_storage.save(f"datasets/{job.claim_token.hex}/a.png", ContentFile(b"x"))
    with thread_worker():
        assert recovery_sweep() == [f"requeued the import of 'photos' (job {job.pk})"]
        _imported_once(job)
    job.refresh_from_db()
    assert job.attempts == 2 and not default_storage.exists(lost)


def test_an_import_lost_with_the_broker_is_imported_after_the_restart():
    job = _import_job()
    _held_elsewhere(ImportJob, job.pk, silent=timedelta(0), attempts=1, status="running")
    purge_queues()
    assert requeue_lost_work(broker_is_new=True) == ["import of data set 'photos'"]
    with thread_worker():
        _imported_once(job)


def test_an_import_delivered_twice_is_imported_once():
    job = import_job_create(name="photos", upload=_zip_upload(), categories_from_folders=True,
                            seed=0, user=None)  # fmt: skip
    import_zip.delay(job.pk)
    with thread_worker():
        _imported_once(job)
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_silent_import_is_failed_with_the_reason_after_its_attempts():
    job = _import_job()
    _held_elsewhere(ImportJob, job.pk, silent=LONG_AGO, attempts=3, status="running")
    assert recovery_sweep() == [f"failed the import of 'photos' (job {job.pk})"]
    job.refresh_from_db()
    assert job.status == "failed" and job.claim_token is None
    assert re.fullmatch(
        r"the import stopped answering \(no heartbeat for 36\d\d s after 3 attempts\)", job.error
    )
    assert not default_storage.exists(job.upload)


# --------------------------------------------------------------------------------------
# The check of a run upload (an ImportJob of kind "run")
# --------------------------------------------------------------------------------------


def _run_upload_job(dataset, tmp_path, *, send: bool) -> ImportJob:
    """A run upload of every test image of ``dataset``: stored with its job, its message
    sent (``send``) or not."""
    from tests.worker.test_uploaded_runs import _base, _csv, _zip

    files, rows = _base(dataset)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows)).read_bytes()
    upload = SimpleUploadedFile("run.zip", archive)
    if send:
        return run_upload_job_create(name="elsewhere", dataset=dataset, colour_space="lab",
                                     archive=upload, user=None)  # fmt: skip
    return ImportJob.objects.create(
        kind="run", name="elsewhere", upload=default_storage.save("imports/run.zip", upload),
        original_filename="run.zip", target=dataset, colour_space="lab",
    )  # fmt: skip


def _checked_once(job: ImportJob) -> ModelRun:
    """The job ended done with one run, scored, whose files are the only ones of any run."""
    ended = ImportJob.objects.filter(pk=job.pk, status__in=("done", "failed"))
    job = wait_for(
        lambda: not default_storage.exists(job.upload) and ended.first(), "the check to end"
    )
    assert job.status == "done", job.error
    run = wait_for_run(ModelRun.objects.get().pk, timeout=120)
    assert run == job.run and run.status == "done", run.failure_reason
    tests = run.dataset.images.filter(split="test").count()
    outputs = set(ColourisedImage.objects.filter(run=run).values_list("file", flat=True))
    assert len(outputs) == tests and _files_under("runs") == outputs
    return run


def test_a_run_upload_delivered_twice_is_checked_once(tmp_path):
    job = _run_upload_job(tiny_dataset(), tmp_path, send=True)
    check_run_upload.delay(job.pk)
    with thread_worker():
        _checked_once(job)
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_stale_run_upload_is_checked_again_and_the_lost_attempts_files_removed(tmp_path):
    job = _run_upload_job(tiny_dataset(), tmp_path, send=False)
    _held_elsewhere(ImportJob, job.pk, silent=LONG_AGO, attempts=1, status="running")
    job.refresh_from_db()
    lost = default_storage.save(f"runs/{job.claim_token.hex}/outputs/a.png", ContentFile(b"x"))
    with thread_worker():
        assert recovery_sweep() == [f"requeued the upload of 'elsewhere' (job {job.pk})"]
        _checked_once(job)
    job.refresh_from_db()
    assert job.attempts == 2 and not default_storage.exists(lost)


def test_a_run_upload_lost_with_the_broker_is_checked_after_the_restart(tmp_path):
    job = _run_upload_job(tiny_dataset(), tmp_path, send=False)
    _held_elsewhere(ImportJob, job.pk, silent=timedelta(0), attempts=1, status="running")
    purge_queues()
    assert requeue_lost_work(broker_is_new=True) == ["upload of run 'elsewhere'"]
    with thread_worker():
        _checked_once(job)


def test_a_silent_run_upload_is_failed_with_the_reason_after_its_attempts(tmp_path):
    job = _run_upload_job(tiny_dataset(), tmp_path, send=False)
    _held_elsewhere(ImportJob, job.pk, silent=LONG_AGO, attempts=3, status="running")
    assert recovery_sweep() == [f"failed the upload of 'elsewhere' (job {job.pk})"]
    job.refresh_from_db()
    assert job.status == "failed" and job.claim_token is None
    assert re.fullmatch(
        r"the upload stopped answering \(no heartbeat for 36\d\d s after 3 attempts\)", job.error
    )
    assert not default_storage.exists(job.upload) and not ModelRun.objects.exists()


def test_a_fault_of_the_platform_ends_the_import_at_once_in_words(monkeypatch):
    """A fault that is not the upload's (injected here: the database refuses the images'
    rows) fails the job at once, says so without a server path, and keeps nothing; it is
    not left "running" for the sweep to give up on."""
    from worker.models import DatasetImage
    from worker.services.imports import import_job_run

    job = _import_job()

    def explode(*args, **kwargs):
        raise RuntimeError("/tmp/import-x/files: the database went away")

    monkeypatch.setattr(DatasetImage.objects, "bulk_create", explode)
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.claim_token is None
    assert job.error.startswith("the platform failed while reading this upload")
    assert "/tmp" not in job.error and "RuntimeError" not in job.error
    assert not Dataset.objects.exists()
    assert _files_under("datasets") == set()
    assert not default_storage.exists(job.upload)
