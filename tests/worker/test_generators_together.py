"""A worker with ``WORKER_GENERATORS_TOGETHER`` (one GPU) trains an ensemble's generators
together: one generator's task takes the run's other queued generators and steps them in
one process (colourmodels.ensemble.train_generators, ``together``). Each comes out as it
would alone (bit for bit on the CPU), and each sub-model's row is settled as its own
training ends: done, cancelled with its run, failed with the reason, or back in the queue
when another's claim was taken over.

The tasks' code is called here directly, in a thread of the test process where the test
needs to act while it runs (the generators train in threads of their own, with their own
database connections)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections

from tests.worker.runs_helpers import TINY, tiny_dataset
from tests.worker.worker_processes import purge_queues
from worker.models import EpochRecord, ModelRun, SubModel
from worker.services import training
from worker.services.runs import model_run_cancel, model_run_launch
from worker.services.training import submodel_train

pytestmark = pytest.mark.django_db(transaction=True)


def _ensemble(dataset, name: str, **config) -> ModelRun:
    config = {**TINY, "epochs": 3, **config}
    return model_run_launch(
        name=name, kind="ensemble", colour_space="lab", dataset=dataset, config=config
    )


def _generators(run: ModelRun) -> list[SubModel]:
    return list(run.submodels.filter(role=SubModel.Role.GENERATOR).order_by("category"))


def _weights(sm: SubModel) -> dict:
    with default_storage.open(sm.artefacts["best"], "rb") as f:
        return torch.load(f, map_location="cpu", weights_only=False)["state_dict"]


def _epochs(sm: SubModel) -> list[dict]:
    rows = EpochRecord.objects.filter(submodel=sm).order_by("epoch")
    return [{k: v for k, v in r.values.items() if k != "seconds"} for r in rows]


def _in_a_thread(target, **kwargs) -> threading.Thread:
    """``target(**kwargs)`` in a thread that closes its database connection at the end."""

    def main():
        try:
            target(**kwargs)
        finally:
            connections.close_all()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread


def _until(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.1)


def test_one_task_trains_the_runs_generators_together_each_as_alone(settings):
    dataset = tiny_dataset()
    together, alone = _ensemble(dataset, "together"), _ensemble(dataset, "alone")
    purge_queues()  # the launches' messages: the tasks are called here
    settings.WORKER_GENERATORS_TOGETHER = True
    submodel_train(submodel_id=_generators(together)[0].pk)
    stacked = _generators(together)
    assert len(stacked) == len(dataset.categories) > 1
    assert [(sm.status, sm.attempts) for sm in stacked] == [("done", 1)] * len(stacked)
    assert together.submodels.get(role=SubModel.Role.CLASSIFIER).status == "queued"

    settings.WORKER_GENERATORS_TOGETHER = False
    lone = _generators(alone)
    submodel_train(submodel_id=lone[0].pk)
    assert [sm.status for sm in _generators(alone)] == ["done"] + ["queued"] * (len(lone) - 1)
    for sm in lone[1:]:
        submodel_train(submodel_id=sm.pk)
    lone = _generators(alone)
    for a, b in zip(stacked, lone, strict=True):
        assert a.category == b.category and b.status == "done"
        assert (a.best_epoch, a.stopped_epoch, a.epoch) == (b.best_epoch, b.stopped_epoch, b.epoch)
        assert _epochs(a) == _epochs(b) and len(_epochs(a)) == 3
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a.category


def test_a_cancelled_run_stops_every_generator_of_the_stack(settings):
    settings.WORKER_GENERATORS_TOGETHER = True
    run = _ensemble(tiny_dataset(per_category=20), "c", epochs=200, batch_size=2)
    purge_queues()
    generators = run.submodels.filter(role=SubModel.Role.GENERATOR)
    worker = _in_a_thread(submodel_train, submodel_id=generators.order_by("pk").first().pk)
    _until(
        lambda: not generators.filter(step=0, epoch=0).exists(),
        "every generator of the stack to report a step",
    )
    model_run_cancel(run=ModelRun.objects.get(pk=run.pk))
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert set(generators.values_list("status", flat=True)) == {"cancelled"}
    assert max(generators.values_list("epoch", flat=True)) < 200
    assert ModelRun.objects.get(pk=run.pk).status == "cancelled"


def test_a_generator_that_fails_fails_the_run_and_stops_the_others_in_words(settings):
    settings.WORKER_GENERATORS_TOGETHER = True
    dataset = tiny_dataset()
    run = _ensemble(dataset, "f")
    purge_queues()
    broken = dataset.images.filter(split="train").order_by("category", "pk").last()
    default_storage.delete(broken.file)
    default_storage.save(broken.file, ContentFile(b"not an image at all"))
    generators = _generators(run)
    with pytest.raises(Exception, match=broken.file.rsplit("/", 1)[-1]):
        submodel_train(submodel_id=generators[0].pk)
    statuses = {sm.category: sm.status for sm in _generators(run)}
    assert statuses.pop(broken.category) == "failed"
    assert set(statuses.values()) == {"cancelled"}
    failed = run.submodels.get(category=broken.category)
    assert broken.file.rsplit("/", 1)[-1] in failed.failure_reason
    run.refresh_from_db()
    assert run.status == "failed" and broken.category in run.failure_reason


def test_a_generator_taken_over_by_another_attempt_sends_the_others_back_to_the_queue(
    settings, monkeypatch
):
    """Another attempt took one generator over (its claim token replaced, as the sweep does
    when a worker went silent): that one is left to it, the others go back to the queue
    with their task sent again, and the run goes on."""
    settings.WORKER_GENERATORS_TOGETHER = True
    run = _ensemble(tiny_dataset(), "t")
    purge_queues()
    generators = _generators(run)
    taken = generators[-1]
    new_token = uuid.uuid4()
    report = training._Reporter.__call__

    def taken_over_at_its_first_step(self, event):
        if self.claim.submodel.pk == taken.pk and event.phase == "train":
            SubModel.objects.filter(pk=taken.pk).update(claim_token=new_token)
        return report(self, event)

    monkeypatch.setattr(training._Reporter, "__call__", taken_over_at_its_first_step)
    sent = []
    monkeypatch.setattr("worker.tasks.train_submodel.delay", sent.append)
    submodel_train(submodel_id=generators[0].pk)
    rows = {sm.pk: sm for sm in _generators(run)}
    assert rows.pop(taken.pk).claim_token == new_token  # left to the other attempt
    assert {(sm.status, sm.claim_token) for sm in rows.values()} == {("queued", None)}
    assert sorted(sent) == sorted(rows)
    assert ModelRun.objects.get(pk=run.pk).status == "running"
