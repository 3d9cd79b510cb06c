"""A worker killed mid-training: the run resumes from its last checkpoint and finishes, and
no epoch but the interrupted one is trained twice.

These tests run the worker as a separate process (``celery worker``, prefork), exactly as
in deployment, so that it can be killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.worker.runs_helpers import TINY, tiny_dataset, wait_for_run
from tests.worker.worker_processes import (
    purge_queues,
    row_locked,
    start_worker_process,
    stop_worker_process,
    wait_for,
)
from worker.models import EpochRecord, ModelRun, SubModel
from worker.services.runs import model_run_cancel, model_run_launch, runs_sweep_stale

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for_epoch(sm: SubModel, epoch: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if EpochRecord.objects.filter(submodel=sm, epoch=epoch).exists():
            return
        ended = SubModel.objects.filter(pk=sm.pk, status__in=("done", "failed", "cancelled"))
        if ended := ended.first():  # the epoch can no longer come
            raise AssertionError(f"{sm} ended {ended.status}: {ended.failure_reason}")
        time.sleep(0.1)
    raise AssertionError(f"epoch {epoch} never recorded")


def _launch(dataset, epochs: int):
    config = {**TINY, "epochs": epochs, "batch_size": 2, "early_stopping": None}
    run = model_run_launch(
        name="k", kind="baseline", colour_space="lab", dataset=dataset, config=config
    )
    return run, run.submodels.get()


def _assert_resumed_once(sm: SubModel, epochs: int) -> None:
    sm.refresh_from_db()
    assert sm.status == "done" and sm.attempts == 2
    records = {r.epoch: r.values["attempt"] for r in EpochRecord.objects.filter(submodel=sm)}
    assert sorted(records) == list(range(1, epochs + 1))
    # Epochs finished before the kill keep the first attempt's record; the resumed attempt
    # trained only the rest (the interrupted epoch included).
    assert records[1] == 1
    second = [e for e, attempt in records.items() if attempt == 2]
    assert second and second == list(range(min(second), epochs + 1))
    assert all(records[e] in (1, "recovered") for e in range(1, min(second)))


def test_worker_child_killed_mid_training_resumes_and_finishes(tmp_path):
    dataset = tiny_dataset(per_category=16)
    worker = start_worker_process(tmp_path, "killchild")
    try:
        run, sm = _launch(dataset, epochs=4)
        _wait_for_epoch(sm, 1)
        pid = int(SubModel.objects.get(pk=sm.pk).worker.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # the pool process training it; its parent lives on
        run = wait_for_run(run.pk, timeout=240)
    finally:
        stop_worker_process(worker)
    assert run.status == "done", (run.failure_reason, (tmp_path / "killchild.log").read_text())
    _assert_resumed_once(sm, 4)


def test_whole_worker_killed_is_noticed_as_stale_and_resumed_elsewhere(tmp_path):
    dataset = tiny_dataset(per_category=16)
    first = start_worker_process(tmp_path, "first")
    try:
        run, sm = _launch(dataset, epochs=4)
        _wait_for_epoch(sm, 1)
    finally:
        stop_worker_process(first)  # the machine is gone: its task stays unacknowledged in Redis
    # As if it had been on another machine (whose processes cannot be looked up) and silent
    # for longer than RUN_STALE_AFTER_SECONDS.
    SubModel.objects.filter(pk=sm.pk).update(
        worker="another-machine:1", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert any("requeued" in action for action in runs_sweep_stale())
    second = start_worker_process(tmp_path, "second")
    try:
        run = wait_for_run(run.pk, timeout=240)
    finally:
        stop_worker_process(second)
    assert run.status == "done", (run.failure_reason, (tmp_path / "second.log").read_text())
    _assert_resumed_once(sm, 4)


def test_a_silent_run_is_failed_with_a_reason_after_its_attempts(settings):
    settings.RUN_STALE_AFTER_SECONDS = 0
    dataset = tiny_dataset()
    run, sm = _launch(dataset, epochs=2)  # no worker consumes it in this test
    SubModel.objects.filter(pk=sm.pk).update(
        status="running", attempts=3, heartbeat_at="2026-01-01T00:00:00Z", worker="gone:1"
    )
    run.status = "running"
    run.save()
    actions = runs_sweep_stale(max_attempts=3)
    assert actions and actions[0].startswith("failed")
    run.refresh_from_db()
    assert run.status == "failed" and "no heartbeat" in run.failure_reason


def test_a_lost_evaluation_is_queued_again_then_failed(settings):
    settings.RUN_STALE_AFTER_SECONDS = 0
    dataset = tiny_dataset()
    run, sm = _launch(dataset, epochs=2)  # no worker: the queued messages are never taken
    run.status = "evaluating"
    run.claim_token = uuid.uuid4()  # claimed by a worker that then went silent
    run.worker = "gone:1"
    run.evaluation_attempts = 1
    run.heartbeat_at = "2026-01-01T00:00:00Z"
    run.save()
    assert runs_sweep_stale(max_attempts=2) == [f"requeued the evaluation of run {run.pk}"]
    run.refresh_from_db()
    assert run.claim_token is None and run.status == "evaluating"
    run.claim_token = uuid.uuid4()
    run.evaluation_attempts = 2
    run.heartbeat_at = "2026-01-01T00:00:00Z"
    run.save()
    assert runs_sweep_stale(max_attempts=2) == [f"failed the evaluation of run {run.pk}"]
    run.refresh_from_db()
    assert run.status == "failed" and "stopped answering" in run.failure_reason


def test_cancelling_while_a_training_task_claims_its_sub_model_does_not_deadlock():
    """A claim locks the sub-model's row, then its run's (select_related); cancelling
    locked the run first, then the sub-models, and one of the two failed with "deadlock
    detected" (seen in the demo's test: the claim, or the cancel, lost)."""
    run, sm = _launch(tiny_dataset(), epochs=1)  # no worker: its message is purged below
    errors = []

    def cancel() -> None:
        try:
            model_run_cancel(run=run)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    try:
        sql = "SELECT 1 FROM worker_submodel WHERE id = %s FOR UPDATE"
        with row_locked(sql, [sm.pk]) as claim:  # a claim half-way
            cancelling = threading.Thread(target=cancel)
            cancelling.start()
            wait_for(claim.blocked, "the cancel to wait for the claim's row")
            claim.execute("SELECT 1 FROM worker_modelrun WHERE id = %s FOR UPDATE", [run.pk])
        cancelling.join(30)
    finally:
        purge_queues()
    assert not cancelling.is_alive() and errors == []
    assert ModelRun.objects.get(pk=run.pk).status == "cancelled"
