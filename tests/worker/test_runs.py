"""Model runs trained by a real Celery worker over the real Redis, at tiny scale."""

from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from tests.worker.runs_helpers import TINY, tiny_dataset, wait_for_run
from worker.models import ColourisedImage, EpochRecord, ModelRun, SubModel
from worker.services.runs import RunError, model_run_cancel, model_run_launch


@pytest.mark.django_db(transaction=True)
def test_baseline_run_trains_evaluates_and_records_everything(celery_worker):
    dataset = tiny_dataset()
    run = model_run_launch(
        name="base", kind="baseline", colour_space="lab", dataset=dataset, config=TINY
    )
    run = wait_for_run(run.pk)
    assert run.status == "done", run.failure_reason
    sm = run.submodels.get()
    assert (sm.role, sm.category, sm.status, sm.attempts) == ("generator", "", "done", 1)
    epochs = EpochRecord.objects.filter(submodel=sm).order_by("epoch")
    assert [r.epoch for r in epochs] == [1, 2]
    assert {"train_l1", "val_l1", "train_gan", "val_gan", "val_total"} <= set(epochs[0].values)
    assert default_storage.exists(sm.artefacts["best"])
    test_images = dataset.images.filter(split="test").count()
    assert ColourisedImage.objects.filter(run=run).count() == test_images
    assert run.metrics["test"]["n"] == test_images
    assert 0 < run.metrics["test"]["ssim"] <= 1 and run.metrics["test"]["l1"] > 0
    table = run.metrics["training"]["generators"]["all"]
    assert table["last_epoch"] == 2 and table["best"]["val_l1"] is not None
    assert run.environment["device"] == "cpu" and run.environment["torch"]


@pytest.mark.django_db(transaction=True)
def test_ensemble_run_trains_a_classifier_and_one_generator_per_category(celery_worker):
    dataset = tiny_dataset()
    run = model_run_launch(
        name="ens",
        kind="ensemble",
        colour_space="yuv",
        dataset=dataset,
        config={**TINY, "routing": "predicted"},
    )
    run = wait_for_run(run.pk)
    assert run.status == "done", run.failure_reason
    roles = sorted((sm.role, sm.category) for sm in run.submodels.all())
    assert roles == [("classifier", "")] + [("generator", c) for c in sorted(dataset.categories)]
    classifier = run.metrics["classifier"]
    assert classifier["class_names"] == dataset.categories
    assert sum(map(sum, classifier["confusion"])) == run.metrics["test"]["n"]
    assert run.metrics["training"]["ensemble_val_gan_mean"] > 0
    routed = set(ColourisedImage.objects.filter(run=run).values_list("routed_category", flat=True))
    assert routed <= set(dataset.categories)
    assert set(run.metrics["per_category"]) == set(dataset.categories)


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_queued_run_stops_it(celery_worker):
    dataset = tiny_dataset()
    run = model_run_launch(
        name="c",
        kind="baseline",
        colour_space="lab",
        dataset=dataset,
        config={**TINY, "epochs": 50},
    )
    run = model_run_cancel(run=run)
    run = wait_for_run(run.pk)
    assert run.status == "cancelled"
    assert set(run.submodels.values_list("status", flat=True)) == {"cancelled"}


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_run_stops_within_an_epoch(celery_worker):
    """The stop comes within one epoch of the request: while the request is committed the
    sub-model's row is locked, so the trainer can neither record an epoch nor report
    progress, and what is recorded then is exactly where training stood."""
    dataset = tiny_dataset(per_category=20)
    run = model_run_launch(
        name="c",
        kind="baseline",
        colour_space="lab",
        dataset=dataset,
        config={**TINY, "epochs": 200, "batch_size": 2},
    )
    wait_for_run(run.pk, statuses=("running",))
    sm = run.submodels.get()
    deadline = time.monotonic() + 60
    while SubModel.objects.get(pk=sm.pk).step == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    with transaction.atomic():
        at_request = SubModel.objects.select_for_update().get(pk=sm.pk)
        recorded_at_request = EpochRecord.objects.filter(submodel=sm).count()
        model_run_cancel(run=ModelRun.objects.get(pk=run.pk))
    assert at_request.status == "running"
    run = wait_for_run(run.pk, timeout=60)
    assert run.status == "cancelled"
    sm.refresh_from_db()
    assert sm.status == "cancelled" and sm.epoch < 200
    assert sm.epoch <= at_request.epoch + 1
    assert EpochRecord.objects.filter(submodel=sm).count() <= recorded_at_request + 1


@pytest.mark.django_db
def test_launch_refuses_what_cannot_run():
    dataset = tiny_dataset()
    with pytest.raises(RunError, match="power of two"):
        model_run_launch(
            name="x",
            kind="baseline",
            colour_space="lab",
            dataset=dataset,
            config={"image_size": 48},
        )
    with pytest.raises(RunError, match="lab or yuv"):
        model_run_launch(name="x", kind="baseline", colour_space="rgb", dataset=dataset)
    for patience in (0, "5", 2.5, True):
        with pytest.raises(RunError, match="classifier's patience must be a positive number"):
            model_run_launch(
                name="x",
                kind="ensemble",
                colour_space="lab",
                dataset=dataset,
                config={"classifier": {"patience": patience}},
            )
    for shift in (-0.1, 0.5, "0.1", True):
        with pytest.raises(RunError, match="classifier's shift must be a fraction"):
            model_run_launch(
                name="x",
                kind="ensemble",
                colour_space="lab",
                dataset=dataset,
                config={"classifier": {"shift": shift}},
            )
    dataset.categories = []
    dataset.save()
    with pytest.raises(RunError, match="ensemble needs a data set with categories"):
        model_run_launch(name="x", kind="ensemble", colour_space="lab", dataset=dataset)
    assert not ModelRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_oracle_routed_ensemble_colourises_each_image_with_its_own_categorys_generator(
    celery_worker,
):
    """Properties of oracle routing that hold whatever the training made of the networks
    (which generator does better on the synthetic scenes is left to the benchmarks): each
    test image goes to its true category's generator, the routed L1 distance is the
    oracle's, and the stored summaries are the means of the stored per-image metrics."""
    dataset = tiny_dataset(per_category=12)
    config = {**TINY, "early_stopping": None, "routing": "oracle"}
    ensemble = model_run_launch(
        name="e", kind="ensemble", colour_space="lab", dataset=dataset, config=config
    )
    ensemble = wait_for_run(ensemble.pk)
    assert ensemble.status == "done", ensemble.failure_reason
    assert ensemble.metrics["routing"] == "oracle"
    outputs = list(ColourisedImage.objects.filter(run=ensemble).select_related("source"))
    assert len(outputs) == dataset.images.filter(split="test").count()
    assert all(o.routed_category == o.source.category for o in outputs)
    assert ensemble.metrics["test_oracle_l1"] == pytest.approx(ensemble.metrics["test"]["l1"])
    l1 = [o.metrics["l1"] for o in outputs]
    assert ensemble.metrics["test"]["l1"] == pytest.approx(sum(l1) / len(l1))
    for category, summary in ensemble.metrics["per_category"].items():
        own = [o.metrics["ssim"] for o in outputs if o.source.category == category]
        assert summary["n"] == len(own)
        assert summary["ssim"] == pytest.approx(sum(own) / len(own))
