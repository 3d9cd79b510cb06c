"""The run command's worker shares the machine's cores among the trainings still running
(worker.services.training.share_cores): the demo's router, the last training left, then
uses both cores instead of one while the other idles."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from tests.worker.runs_helpers import queued_run, tiny_dataset
from worker.models import SubModel
from worker.services.training import share_cores

pytestmark = pytest.mark.django_db


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("WORKER_SHARE_CORES", "1")


def _running(run, n: int, host: str | None = None) -> None:
    host = host or socket.gethostname()
    for i, sm in enumerate(run.submodels.all()[:n]):
        SubModel.objects.filter(pk=sm.pk).update(
            status=SubModel.Status.RUNNING, worker=f"{host}:{1000 + i}"
        )


def test_the_last_training_running_here_gets_every_core(four_cores, threads):
    run = queued_run(tiny_dataset(), kind="ensemble")
    _running(run, 2)
    assert share_cores() == 2 and torch.get_num_threads() == 2
    SubModel.objects.filter(pk=run.submodels.filter(status="running").first().pk).update(
        status=SubModel.Status.DONE
    )
    assert share_cores() == 4 and torch.get_num_threads() == 4


def test_generators_trained_together_in_one_process_count_once(four_cores, threads):
    run = queued_run(tiny_dataset(), kind="ensemble")
    generators = run.submodels.filter(role=SubModel.Role.GENERATOR)
    generators.update(status=SubModel.Status.RUNNING, worker=f"{socket.gethostname()}:1000")
    assert generators.count() > 1
    assert share_cores() == 4


def test_trainings_on_other_machines_do_not_count(four_cores, threads):
    run = queued_run(tiny_dataset(), kind="ensemble")
    _running(run, 1)
    other = queued_run(tiny_dataset("other"), name="other", kind="ensemble")
    _running(other, 3, host="gpu-box-7")
    assert share_cores() == 4


def test_left_alone_unless_the_run_command_chose_the_threads(monkeypatch, threads):
    monkeypatch.delenv("WORKER_SHARE_CORES", raising=False)
    torch.set_num_threads(1)
    assert share_cores() is None and torch.get_num_threads() == 1
