"""Recovery of a study's stimulus preparation (worker.services.recovery): a killed worker
(its pool child, or the whole worker, whose message then sits unacknowledged in Redis), a
lost broker, a stale heartbeat, a duplicate delivery. The study never stays "preparing",
ends as the researcher asked (open, or a draft for a preview), its stimuli are prepared
once, and the files of a lost attempt are removed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from studyplatform.launcher import requeue_lost_work
from survey.models import Stimulus, Study
from survey.services.stimuli import study_request_open
from survey.services.studies import study_create
from survey.tasks import prepare_study
from tests.survey.study_helpers import tiny_dataset, uploaded_run
from tests.worker.worker_processes import (
    purge_queues,
    row_locked,
    start_worker_process,
    stop_worker_process,
    thread_worker,
    wait_for,
    wait_until_dead,
)
from worker.services.recovery import recovery_sweep

pytestmark = pytest.mark.django_db(transaction=True)

#: Two conditions (between subjects) of 6 scenes: 6 AI and 6 real stimuli each.
STIMULI = 24


@pytest.fixture
def study(tmp_path) -> Study:
    dataset = tiny_dataset("syn", per_category=10, size=32)
    runs = [uploaded_run(dataset, tmp_path, name=n, style=n) for n in ("warm", "cool")]
    purge_queues()
    return study_create(name="s", runs=runs, images_per_participant=4)


def _stimulus_files() -> set[str]:
    try:
        _, files = default_storage.listdir("stimuli")
    except FileNotFoundError:
        return set()
    return {f"stimuli/{name}" for name in files}


def _lost_file(token: uuid.UUID) -> str:
    """A file as the attempt ``token`` wrote it before it was lost (no row for it)."""
    return default_storage.save(f"stimuli/{token.hex[:16]}{'0' * 16}.jpg", ContentFile(b"x"))


def _held(study: Study, *, worker: str, silent: timedelta, attempts: int = 1) -> uuid.UUID:
    token = uuid.uuid4()
    Study.objects.filter(pk=study.pk).update(
        preparation_token=token,
        preparation_worker=worker,
        preparation_heartbeat_at=timezone.now() - silent,
        preparation_attempts=attempts,
    )
    return token


def _settled(study: Study, timeout: float = 120.0) -> Study:
    return wait_for(
        lambda: Study.objects.exclude(status=Study.Status.PREPARING).filter(pk=study.pk).first(),
        "the preparation to end",
        timeout,
    )


def _prepared_once(study: Study, status: str, attempts: int) -> None:
    """Ended as asked, by ``attempts`` attempts, with its stimuli stored once: every file
    in the stimuli folder is one of its stimuli (nothing left by a lost attempt)."""
    study.refresh_from_db()
    assert study.status == status, study.preparation_error
    assert study.preparation_error == "" and study.preparation_token is None
    assert study.preparation_attempts == attempts
    assert (study.opened_at is not None) == (status == "open")
    files = set(Stimulus.objects.filter(study=study).values_list("file", flat=True))
    assert len(files) == STIMULI and _stimulus_files() == files


def _dead_pid() -> int:
    process = subprocess.Popen(["sleep", "60"])
    process.kill()
    process.wait()
    return process.pid


def test_a_preview_requeued_after_a_fresh_broker_leaves_the_study_a_draft(study):
    """The reported bug: requeued after a restart with a fresh Redis, a preparation asked for
    a preview opened the study to participants."""
    study_request_open(study=study, open_after=False)
    purge_queues()  # the new Redis has none of the old one's messages
    assert requeue_lost_work(broker_is_new=True) == ["preparation of study 's'"]
    with thread_worker():
        _settled(study)
    _prepared_once(study, "draft", attempts=1)


def test_a_preparation_lost_with_the_broker_while_running_is_done_after_the_restart(study):
    study_request_open(study=study)
    lost = _lost_file(_held(study, worker="another-machine:1", silent=timedelta(0)))
    purge_queues()
    assert requeue_lost_work(broker_is_new=True) == ["preparation of study 's'"]
    with thread_worker():
        _settled(study)
    _prepared_once(study, "open", attempts=2)
    assert not default_storage.exists(lost)


def test_a_stale_preparation_is_queued_again_by_the_sweep_and_its_files_removed(study):
    study_request_open(study=study)
    purge_queues()  # its message is in the unacknowledged set of a machine that is gone
    lost = _lost_file(_held(study, worker="another-machine:1", silent=timedelta(hours=1)))
    with thread_worker():
        assert recovery_sweep() == [f"requeued the preparation of study {study.pk}"]
        _settled(study)
    _prepared_once(study, "open", attempts=2)
    assert not default_storage.exists(lost)


def test_a_silent_preparation_is_failed_with_the_reason_after_its_attempts(study, settings):
    study_request_open(study=study)
    purge_queues()
    token = _held(study, worker="another-machine:1", silent=timedelta(hours=1), attempts=3)
    lost = _lost_file(token)
    assert recovery_sweep() == [f"failed the preparation of study {study.pk}"]
    study.refresh_from_db()
    assert study.status == "draft" and study.preparation_token is None
    assert study.preparation_error.startswith(
        "preparing the stimuli stopped answering (no heartbeat for 36"
    )
    assert not default_storage.exists(lost)


def test_a_preparation_delivered_twice_is_done_once(study):
    study_request_open(study=study)
    prepare_study.delay(study.pk)
    with thread_worker():
        _settled(study)
    _prepared_once(study, "open", attempts=1)


def test_open_pressed_again_on_a_stuck_preview_takes_it_over_and_opens(study):
    study_request_open(study=study, open_after=False)
    purge_queues()
    lost = _lost_file(_held(study, worker=f"{socket.gethostname()}:{_dead_pid()}",
                            silent=timedelta(0)))  # fmt: skip
    study_request_open(study=study)  # the researcher presses Open
    with thread_worker():
        _settled(study)
    _prepared_once(study, "open", attempts=2)
    assert not default_storage.exists(lost)


def _block_before_commit(study: Study):
    """The preparation stops at the insert of its rows, after it has claimed the study and
    written its files: another transaction here inserted, and has not committed, an AI
    stimulus of the same condition and scene (unique)."""
    condition = study.conditions.select_related("run").first()
    scene = condition.run.outputs.first().source_id
    return row_locked(
        "INSERT INTO survey_stimulus (study_id, condition_id, scene_id, is_real, role, file, "
        "width, height, exposures) VALUES (%s, %s, %s, false, 'main', 'blocker', 32, 32, 0)",
        [study.pk, condition.pk, scene],
    )


def _claimed_and_blocked(study: Study, lock) -> Study:
    wait_for(lock.blocked, "the preparation to reach the insert of its rows")
    study = Study.objects.get(pk=study.pk)
    token = study.preparation_token
    assert token is not None and study.preparation_attempts == 1
    written = {f for f in _stimulus_files() if f.startswith(f"stimuli/{token.hex[:16]}")}
    assert len(written) == STIMULI and not Stimulus.objects.exists()
    return study


def test_a_preparation_whose_pool_process_is_killed_is_done_again(study, tmp_path):
    worker = start_worker_process(tmp_path, "prepchild")
    try:
        with _block_before_commit(study) as lock:
            study_request_open(study=study)
            held = _claimed_and_blocked(study, lock)
            os.kill(int(held.preparation_worker.rsplit(":", 1)[1]), signal.SIGKILL)
        _settled(study)  # Celery gives the task to a new pool process
    finally:
        stop_worker_process(worker)
    _prepared_once(study, "open", attempts=2)


def test_a_preparation_whose_whole_worker_is_killed_is_noticed_and_done_elsewhere(study, tmp_path):
    first = start_worker_process(tmp_path, "prepfirst")
    try:
        with _block_before_commit(study) as lock:
            study_request_open(study=study, open_after=False)
            held = _claimed_and_blocked(study, lock)
            stop_worker_process(first)  # its message stays unacknowledged for 7 days
            wait_until_dead(held.preparation_worker)
    finally:
        stop_worker_process(first)
    assert recovery_sweep() == [f"requeued the preparation of study {study.pk}"]
    second = start_worker_process(tmp_path, "prepsecond")
    try:
        _settled(study)
    finally:
        stop_worker_process(second)
    _prepared_once(study, "draft", attempts=2)
