"""A worker killed in the middle of an evaluation, an uploaded run's scoring, a data
set's import or the check of an uploaded run (training: test_run_recovery.py; preparation:
the survey's tests). Killed pool process: Celery gives the task to a new one, which takes
the work over. Killed whole worker: its message stays unacknowledged in Redis; the sweep
notices the dead claim and queues the work again for another worker. Either way the work
ends done, once.

The worker runs as a separate process (prefork, as in deployment). A transaction of the
test holds a row that the task writes near its end (a statement before its commit: a
client killed after sending COMMIT may still commit), so that it is killed at a known
point: claimed, its files written, its rows not."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.survey.study_helpers import uploaded_run
from tests.worker.runs_helpers import TINY, tiny_dataset, wait_for_run
from tests.worker.test_recovery import (
    _checked_once,
    _evaluated_once,
    _files_under,
    _import_job,
    _imported_once,
    _run_upload_job,
)
from tests.worker.worker_processes import (
    purge_queues,
    row_locked,
    start_worker_process,
    stop_worker_process,
    wait_for,
    wait_until_dead,
)
from worker.models import ColourisedImage, ImportJob, ModelRun
from worker.services.recovery import recovery_sweep
from worker.services.runs import model_run_launch
from worker.tasks import check_run_upload, evaluate_upload, import_zip

pytestmark = pytest.mark.django_db(transaction=True)

KILLS = ["pool process", "whole worker"]


def _kill(kill: str, worker: subprocess.Popen, holder: str) -> None:
    if kill == "pool process":
        os.kill(int(holder.rsplit(":", 1)[1]), signal.SIGKILL)  # its parent lives on
    else:
        stop_worker_process(worker)  # the machine is gone
        wait_until_dead(holder)


def _recover(kill: str, worker: subprocess.Popen, tmp_path: Path, action: str):
    """The worker that finishes the work."""
    if kill == "pool process":
        return worker  # Celery hands the task to a new pool process
    assert recovery_sweep() == [action]
    return start_worker_process(tmp_path, "second")


def _unended(row):
    """``row`` read again; AssertionError if its work has ended (failed, say), since the
    point that the test waits for can then never come."""
    row = type(row).objects.get(pk=row.pk)
    if row.status in ("done", "failed", "cancelled"):
        reason = getattr(row, "failure_reason", None) or getattr(row, "error", "")
        raise AssertionError(f"{type(row).__name__} {row.pk} ended {row.status}: {reason}")
    return row


@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_evaluation_is_done_again_once(kill, tmp_path):
    dataset = tiny_dataset()
    image = dataset.images.filter(split="test").first()
    purge_queues()
    worker = start_worker_process(tmp_path, "first")
    try:
        config = {**TINY, "epochs": 1, "early_stopping": None}
        run = model_run_launch(
            name="r", kind="baseline", colour_space="lab", dataset=dataset, config=config
        )
        # The same image colourised by another transaction, not yet committed: the
        # evaluation's insert of its images waits for it (the row is unique per run).
        sql = (
            "INSERT INTO worker_colourisedimage (run_id, source_id, file, routed_category, "
            "metrics) VALUES (%s, %s, 'blocker', '', '{}')"
        )
        with row_locked(sql, [run.pk, image.pk]) as lock:
            tests = dataset.images.filter(split="test").count()
            held = wait_for(
                lambda: (
                    _unended(run)
                    and lock.blocked()
                    and ModelRun.objects.filter(pk=run.pk, claim_token__isnull=False).first()
                    and len(_files_under(f"{run.storage_prefix}/test")) == tests
                    and ModelRun.objects.get(pk=run.pk)
                ),
                "the evaluation to reach the insert of its images",
                timeout=240,
                workers=[worker],
            )
            assert held.status == "evaluating" and held.evaluation_attempts == 1
            _kill(kill, worker, held.worker)
        worker = _recover(kill, worker, tmp_path, f"requeued the evaluation of run {run.pk}")
        run = wait_for_run(run.pk, timeout=120)
    finally:
        stop_worker_process(worker)
    _evaluated_once(run)
    assert run.evaluation_attempts == 2


@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_scoring_of_an_uploaded_run_is_done_again(kill, tmp_path):
    run = uploaded_run(tiny_dataset(), tmp_path, name="up", evaluate=False)
    output = ColourisedImage.objects.filter(run=run).first()
    purge_queues()
    worker = start_worker_process(tmp_path, "first")
    try:
        # Its metrics are written to every colourised image at its end.
        sql = "SELECT 1 FROM worker_colourisedimage WHERE id = %s FOR UPDATE"
        with row_locked(sql, [output.pk]) as lock:
            evaluate_upload.delay(run.pk)
            wait_for(
                lambda: _unended(run) and lock.blocked(),
                "the scoring to reach its end",
                workers=[worker],
            )
            held = ModelRun.objects.get(pk=run.pk)
            assert held.claim_token is not None and held.evaluation_attempts == 1
            _kill(kill, worker, held.worker)
        action = f"requeued the evaluation of uploaded run {run.pk}"
        worker = _recover(kill, worker, tmp_path, action)
        run = wait_for_run(run.pk, timeout=120)
    finally:
        stop_worker_process(worker)
    assert run.status == "done", run.failure_reason
    assert run.evaluation_attempts == 2 and run.metrics["test"]["n"] == run.outputs.count()


@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_import_is_done_again_and_the_lost_attempts_files_removed(kill, tmp_path):
    job = _import_job()
    purge_queues()
    worker = start_worker_process(tmp_path, "first")
    try:
        # A data set of the same name, not yet committed: the import's insert waits for it.
        sql = (
            "INSERT INTO worker_dataset (uid, name, source, created_at, seed, categories, "
            "counts, summary) VALUES (gen_random_uuid(), 'photos', 'zip', now(), 0, '[]', "
            "'{}', '{}')"
        )
        with row_locked(sql) as lock:
            import_zip.delay(job.pk)
            wait_for(
                lambda: _unended(job) and lock.blocked(),
                "the import to reach its commit",
                workers=[worker],
            )
            held = ImportJob.objects.get(pk=job.pk)
            assert held.status == "running" and held.attempts == 1
            assert len(_files_under(f"datasets/{held.claim_token.hex}")) == 10
            _kill(kill, worker, held.worker)
        worker = _recover(kill, worker, tmp_path, f"requeued the import of 'photos' (job {job.pk})")
        _imported_once(job)
    finally:
        stop_worker_process(worker)
    job.refresh_from_db()
    assert job.attempts == 2


@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_run_upload_is_checked_again_and_the_lost_attempts_files_removed(kill, tmp_path):
    dataset = tiny_dataset()
    job = _run_upload_job(dataset, tmp_path, send=False)
    tests = dataset.images.filter(split="test").count()
    purge_queues()
    worker = start_worker_process(tmp_path, "first")
    try:
        # The run's insert waits for this lock (nothing else writes runs meanwhile).
        with row_locked("LOCK TABLE worker_modelrun IN SHARE MODE") as lock:
            check_run_upload.delay(job.pk)
            wait_for(lock.blocked, "the check to reach its commit")
            held = ImportJob.objects.get(pk=job.pk)
            assert held.status == "running" and held.attempts == 1
            assert len(_files_under(f"runs/{held.claim_token.hex}/outputs")) == tests
            _kill(kill, worker, held.worker)
        action = f"requeued the upload of 'elsewhere' (job {job.pk})"
        worker = _recover(kill, worker, tmp_path, action)
        _checked_once(job)
    finally:
        stop_worker_process(worker)
    job.refresh_from_db()
    assert job.attempts == 2
