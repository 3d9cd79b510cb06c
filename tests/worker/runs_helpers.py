"""Shared pieces of the model-run tests: a tiny synthetic data set and waiting for runs."""

from __future__ import annotations

import time

from django.core.management import call_command

from worker.models import Dataset, ModelRun

TINY = {
    "image_size": 32,
    "width": 8,
    "epochs": 2,
    "batch_size": 8,
    "fast": False,
    "classifier": {"epochs": 2, "batch_size": 8},
}


def tiny_dataset(name: str = "syn", per_category: int = 10, size: int = 32) -> Dataset:
    call_command(
        "make_synthetic", "--per-category", str(per_category), "--size", str(size), "--name", name
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
