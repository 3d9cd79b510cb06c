"""Shared by the run commands: finding rows by name or id, and printing a run."""

from __future__ import annotations

from django.core.management.base import CommandError

from worker.models import Dataset, ModelRun
from worker.run_results import run_results


def dataset_by_name_or_id(value: str) -> Dataset:
    found = Dataset.objects.filter(name=value).first()
    if found is None and value.isdigit():
        found = Dataset.objects.filter(pk=int(value)).first()
    if found is None:
        raise CommandError(f"no data set named or numbered {value!r}")
    return found


def run_by_name_or_id(value: str) -> ModelRun:
    """The run with this name (names may repeat: then the id is needed), or with this id."""
    named = list(ModelRun.objects.filter(name=value).order_by("pk"))
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = ", ".join(str(run.pk) for run in named)
        raise CommandError(f"several runs are named {value!r} (ids {ids}); give the id")
    run = ModelRun.objects.filter(pk=int(value)).first() if value.isdigit() else None
    if run is None:
        raise CommandError(f"no run {value}: no run has that name or id")
    return run


def describe_run(run: ModelRun) -> list[str]:
    lines = [
        f"run {run.pk} {run.name!r}: {run.get_kind_display()}, {run.colour_space.upper()}, "
        f"data set {run.dataset.name!r}: {run.status}"
    ]
    if run.failure_reason:
        lines.append(f"  reason: {run.failure_reason}")
    for sm in run.submodels.all():
        progress = f"epoch {sm.epoch}/{sm.epochs}"
        if sm.steps:
            progress += f", step {sm.step}/{sm.steps}"
        if sm.eta_seconds:
            progress += f", ETA {sm.eta_seconds:.0f} s"
        extra = f", best epoch {sm.best_epoch}" if sm.best_epoch else ""
        if sm.stopped_epoch:
            extra += f", stopped early at {sm.stopped_epoch}"
        lines.append(f"  {sm.label:<24} {sm.status:<10} {progress}{extra}")
    results = run_results(run)
    test = results.test
    if test:
        lines.append(
            f"  test: L1 distance {test.l1:.3f}, SSIM {test.ssim:.4f}, "
            f"PSNR {test.psnr:.2f} dB, n = {test.n}"
        )
    classifier = results.classifier
    if classifier:
        lines.append(
            f"  classifier: macro-F1 {classifier.macro_f1:.3f}, accuracy {classifier.accuracy:.3f}"
        )
    return lines
