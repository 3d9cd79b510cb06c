"""The typed reading of ``ModelRun.metrics``: every part the evaluation stores comes back
as a typed value, and what was not stored is None or empty, never a KeyError."""

from __future__ import annotations

from dataclasses import fields

import pytest

from worker.models import ModelRun
from worker.run_results import (
    EPOCH_LOSS_KEYS,
    EpochLosses,
    MetricSummary,
    results_from_stored,
    run_results,
)
from worker.services.evaluation import METRIC_KEYS, metrics_summary


def _image(l1: float, ssim: float) -> dict:
    return dict.fromkeys(METRIC_KEYS, 0.5) | {"l1": l1, "ssim": ssim, "psnr": None}


def _stored_ensemble() -> dict:
    """Shaped as ``evaluation._evaluate`` stores an ensemble's results."""
    per_image = [
        ("city", _image(4.0, 0.5)),
        ("city", _image(6.0, 0.7)),
        ("people", _image(2.0, 0.9)),
    ]
    losses = {"train_l1": 9.0, "val_l1": 10.0, "train_gan": 0.7, "val_gan": 0.8}
    return {
        **metrics_summary(per_image),
        "training": {
            "generators": {
                "city": {
                    "last_epoch": 3,
                    "best_epoch": 2,
                    "stopped_epoch": 3,
                    "last": losses,
                    "best": losses | {"val_gan": 0.6},
                },
                "people": {
                    "last_epoch": 3,
                    "best_epoch": 3,
                    "stopped_epoch": None,
                    "last": losses,
                    "best": losses,
                },
            },
            "ensemble_val_gan_mean": 0.7,
        },
        "routing": "predicted",
        "classifier": {
            "class_names": ["city", "people"],
            "confusion": [[2, 0], [1, 0]],
            "macro_f1": 0.4,
            "accuracy": 2 / 3,
            "per_class_f1": [0.8, 0.0],
        },
        "test_oracle_l1": 3.5,
    }


def test_every_stored_part_is_read_with_its_type():
    results = results_from_stored(_stored_ensemble())
    assert results.evaluated
    assert results.test == MetricSummary(
        n=3,
        l1=4.0,
        chroma_mae=0.5,
        ssim=pytest.approx(0.7),
        psnr=None,
        colourfulness=0.5,
        colourfulness_truth=0.5,
        colourfulness_difference=0.5,
    )
    assert results.per_category["city"].n == 2 and results.per_category["city"].l1 == 5.0
    assert results.per_category["people"].value("ssim") == 0.9
    city = results.generators["city"]
    assert (city.last_epoch, city.best_epoch, city.stopped_epoch) == (3, 2, 3)
    assert city.best == EpochLosses(train_l1=9.0, val_l1=10.0, train_gan=0.7, val_gan=0.6)
    assert results.generators["people"].stopped_epoch is None
    assert results.ensemble_val_gan_mean == 0.7 and results.routing == "predicted"
    assert results.classifier.class_names == ["city", "people"]
    assert results.classifier.confusion == [[2, 0], [1, 0]]
    assert results.classifier.per_class_f1 == [0.8, 0.0]
    assert results.test_oracle_l1 == 3.5
    with pytest.raises(KeyError):
        results.test.value("not a metric")


def test_what_was_not_stored_is_none_or_empty():
    for stored in ({}, None):
        results = results_from_stored(stored)
        assert not results.evaluated and results.test is None
        assert results.per_category == {} and results.generators == {}
        assert results.classifier is None and results.routing is None
        assert results.test_oracle_l1 is None and results.ensemble_val_gan_mean is None
    # An uploaded run: summaries, no training, no classifier.
    uploaded = metrics_summary([("", _image(1.0, 0.9))]) | {
        "training": {"generators": {}},
        "routing": None,
    }
    results = results_from_stored(uploaded)
    assert results.test.l1 == 1.0 and results.generators == {} and results.classifier is None
    # A classifier stored without per-class F1 scores.
    stored = _stored_ensemble()
    del stored["classifier"]["per_class_f1"]
    assert results_from_stored(stored).classifier.per_class_f1 == [None, None]
    assert run_results(ModelRun(metrics=_stored_ensemble())).test.n == 3


def test_the_types_name_every_key_the_evaluation_writes():
    assert {f.name for f in fields(MetricSummary)} == {"n", *METRIC_KEYS}
    assert {f.name for f in fields(EpochLosses)} == set(EPOCH_LOSS_KEYS)
