"""Deleting data sets, model runs and finished uploads, with their files
(:mod:`studyplatform.deletion`).

Safeguards, each refused in words:

- a data set used by a run (trained on it or uploaded against it) stays: the runs are named;
- a run still queued, training or being evaluated must be cancelled (and have stopped) first;
- a run that is a condition of any study stays (its images were or will be shown): the
  studies are named;
- an upload still queued or being checked stays until it ends.

A plan names only what the user may see; others' runs or studies are counted, not named.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError

from studyplatform.access import visible_to
from studyplatform.deletion import (
    DeletionPlan,
    DeletionRefused,
    delete_files_on_commit,
    storage_files,
)
from studyplatform.words import counted
from worker.models import (
    ColourisedImage,
    Dataset,
    EpochRecord,
    ImportJob,
    ModelRun,
    SubModel,
)
from worker.services.datasets import dataset_folder


def _named(objects: list, user, one: str, many: str | None = None) -> str:
    """ "run “a” and run “b”", naming only what ``user`` may see (the rest counted)."""
    if not objects:
        return ""
    rows = type(objects[0]).objects.filter(pk__in=[o.pk for o in objects])
    seen = set(visible_to(rows, user).values_list("pk", flat=True))
    names = [f"“{o.name}”" for o in objects if o.pk in seen]
    hidden = len(objects) - len(names)
    if hidden:
        others = counted(hidden, f"other {one}", f"other {many or one + 's'}")
        names.append(f"{others} you cannot see")
    return ", ".join(names)


def _shares(obj) -> list[str]:
    n = obj.shares.count()
    return [f"its sharing with {counted(n, 'colleague')}"] if n else []


# --- Data sets ----------------------------------------------------------------------------


def dataset_deletion_plan(dataset: Dataset, user) -> DeletionPlan:
    plan = DeletionPlan(obj=dataset, what=f"the data set “{dataset.name}”")
    runs = list(dataset.runs.order_by("name"))
    if runs:
        plan.refusals.append(
            f"It is used by {counted(len(runs), 'model run')}: {_named(runs, user, 'run')}. "
            "Delete those runs first, or archive the data set instead (it then leaves the "
            "lists and choices but keeps working for its runs)."
        )
    images = dataset.images.values_list("file", flat=True)
    plan.folders = [dataset_folder(dataset.uid)]
    plan.files, plan.size = storage_files(images, plan.folders)
    plan.counts = [counted(dataset.images.count(), "image"), *_shares(dataset)]
    return plan


def dataset_delete(*, dataset: Dataset, user) -> DeletionPlan:
    """Delete ``dataset`` and its image files (after the commit), if nothing uses it."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        if dataset is None:
            raise DeletionRefused("it was already deleted.")
        plan = dataset_deletion_plan(dataset, user)
        _refuse(plan)
        try:
            dataset.delete()
        except ProtectedError:  # a run made meanwhile
            raise DeletionRefused("a run now uses it; delete that run first.") from None
        delete_files_on_commit(plan.files, plan.folders)
    return plan


# --- Model runs ---------------------------------------------------------------------------


def _run_files(run: ModelRun) -> list[str]:
    outputs = list(ColourisedImage.objects.filter(run=run).values_list("file", flat=True))
    weights = [
        name
        for artefacts in SubModel.objects.filter(run=run).values_list("artefacts", flat=True)
        for name in (artefacts or {}).values()
        if isinstance(name, str)
    ]
    return outputs + weights


def run_deletion_plan(run: ModelRun, user) -> DeletionPlan:
    # Here, not at the top: survey imports worker, never the other way round at import time.
    from survey.models import Study

    plan = DeletionPlan(obj=run, what=f"the model run “{run.name}”")
    stopping = run.submodels.filter(status=SubModel.Status.RUNNING).exists()
    if run.is_active or stopping:
        plan.refusals.append(
            f"It is still {run.get_status_display()}: "
            + (
                "it is stopping; wait until it has stopped."
                if run.cancel_requested
                else "cancel it first, then delete it once it has stopped."
            )
        )
    studies = list(Study.objects.filter(conditions__run=run).distinct().order_by("name"))
    if studies:
        plan.refusals.append(
            f"It is a condition of {counted(len(studies), 'study', 'studies')}: "
            f"{_named(studies, user, 'study', 'studies')}. A study keeps its runs (their "
            "images are what participants see): delete those studies first, or remove the "
            "run from a draft study, or archive the run instead."
        )
    plan.folders = [run.storage_prefix]
    plan.files, plan.size = storage_files(_run_files(run), plan.folders)
    plan.counts = [
        counted(run.submodels.count(), "sub-model"),
        counted(EpochRecord.objects.filter(submodel__run=run).count(), "recorded epoch"),
        counted(run.outputs.count(), "colourised image"),
        *_shares(run),
    ]
    return plan


def run_delete(*, run: ModelRun, user) -> DeletionPlan:
    """Delete ``run``, its sub-models, records and files (after the commit), if it has
    stopped and no study uses it."""
    with transaction.atomic():
        # The sub-models' rows before the run's: the order of a claim and of a cancel.
        list(SubModel.objects.select_for_update().filter(run_id=run.pk).order_by("pk").values("pk"))
        run = ModelRun.objects.select_for_update().filter(pk=run.pk).first()
        if run is None:
            raise DeletionRefused("it was already deleted.")
        plan = run_deletion_plan(run, user)
        _refuse(plan)
        try:
            run.delete()
        except ProtectedError:  # a study made meanwhile
            raise DeletionRefused("a study now uses it; delete that study first.") from None
        delete_files_on_commit(plan.files, plan.folders)
    return plan


# --- Uploads (a data set's zip or a run made elsewhere) -----------------------------------


def import_job_deletion_plan(job: ImportJob, user) -> DeletionPlan:
    kind = "data set" if job.kind == ImportJob.Kind.DATASET else "run"
    plan = DeletionPlan(obj=job, what=f"the {kind} upload “{job.name}”")
    if job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
        plan.refusals.append(
            f"It is still {job.get_status_display()}: wait until it has been checked."
        )
    plan.files, plan.size = storage_files([job.upload, job.manifest])
    plan.counts = ["its record (its status and the problems found)"]
    made = job.dataset if job.kind == ImportJob.Kind.DATASET else job.run
    if made is not None:
        plan.keeps.append(f"the {kind} it made, “{made.name}”")
    return plan


def import_job_delete(*, job: ImportJob, user) -> DeletionPlan:
    """Delete a finished or failed upload's record and any stored file it still has."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job.pk).first()
        if job is None:
            raise DeletionRefused("it was already deleted.")
        plan = import_job_deletion_plan(job, user)
        _refuse(plan)
        job.delete()
        delete_files_on_commit(plan.files)
    return plan


def _refuse(plan: DeletionPlan) -> None:
    if plan.refusals:
        raise DeletionRefused(" ".join(plan.refusals))
