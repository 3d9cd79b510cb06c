"""Shared pieces of the model-run tests: a tiny synthetic data set and waiting for runs."""

from __future__ import annotations

import time

from django.core.management import call_command

from worker.models import Dataset, ModelRun, SubModel
from worker.services.runs import default_config

TINY = {
    "image_size": 32,
    "width": 8,
    "epochs": 2,
    "batch_size": 8,
    "fast": False,
    "classifier": {"epochs": 2, "batch_size": 8},
}


def tiny_dataset(name: str = "syn", per_category: int = 10, size: int = 32, owner=None) -> Dataset:
    options = ["--owner", owner.username] if owner is not None else []
    call_command(
        "make_synthetic",
        *("--per-category", str(per_category), "--size", str(size), "--name", name, *options),
    )
    return Dataset.objects.get(name=name)


def wait_for_run(run_id: int, timeout: float = 300.0, statuses=("done", "failed", "cancelled")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ModelRun.objects.get(pk=run_id)
        if run.status in statuses:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s")


def queued_run(
    dataset: Dataset, name: str = "queued", kind: str = "baseline", owner=None
) -> ModelRun:
    """A run row with its sub-models, as launched, with no task sent (for pages that only
    read): rows made directly, not through the service."""
    run = ModelRun.objects.create(
        name=name,
        kind=kind,
        colour_space="lab",
        dataset=dataset,
        config=default_config(kind=kind, categories=list(dataset.categories)),
        owner=owner,
    )
    specs = [("generator", "")]
    if kind == "ensemble":
        specs = [("classifier", "")] + [("generator", c) for c in dataset.categories]
    for role, category in specs:
        SubModel.objects.create(run=run, role=role, category=category)
    return run
