"""Model runs: launching, claiming work, progress, cancelling, finishing, stale runs.

The database row is the source of truth. A task claims its sub-model (a new claim token per
attempt), reports progress under that token, and stops as soon as the token is replaced or
the run is cancelled. Tasks are enqueued after the transaction that made them commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from colourmodels.ensemble import ROUTINGS
from colourmodels.ensemble import default_config as ensemble_default_config
from worker.models import Dataset, ModelRun, SubModel
from worker.services.claims import ClaimFields, ClaimLost, claim_is_stale, worker_identity

__all__ = ["ClaimLost"]  # raised by submodel_report and submodel_finish

#: Seeds run from 0 to 2**32 - 1: what NumPy's legacy seeding (and so training) accepts.
SEED_MAX = 2**32 - 1


class RunError(Exception):
    """A run that cannot be launched or changed as asked; the message says why."""


def default_config(*, kind: str, categories: list[str]) -> dict:
    """The paper's settings (method.md §3–5), for the given categories."""
    return ensemble_default_config(categories, ensemble=kind == ModelRun.Kind.ENSEMBLE)


def _merged(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validate_config(config: dict, kind: str) -> None:
    size = config["image_size"]
    if not isinstance(size, int) or size < 32 or size & (size - 1):
        raise RunError(f"image size must be a power of two of at least 32, got {size!r}")
    for key in ("width", "epochs", "batch_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise RunError(f"{key} must be a positive integer, got {config[key]!r}")
    seed = config["seed"]
    if not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise RunError(f"the seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    if config["routing"] not in ROUTINGS:
        raise RunError(f"routing must be one of {', '.join(ROUTINGS)}")
    if kind == ModelRun.Kind.ENSEMBLE:
        classifier = config["classifier"]
        if not isinstance(classifier.get("epochs"), int) or classifier["epochs"] < 1:
            raise RunError("the classifier needs a positive number of epochs")
        patience = classifier.get("patience")
        if patience is not None and (
            not isinstance(patience, int) or isinstance(patience, bool) or patience < 1
        ):
            raise RunError(
                f"the classifier's patience must be a positive number of epochs or empty, "
                f"got {patience!r}"
            )
        shift = classifier.get("shift", 0.0)
        if not isinstance(shift, int | float) or isinstance(shift, bool) or not 0 <= shift < 0.5:
            raise RunError(
                f"the classifier's shift must be a fraction of the image side from 0 to under "
                f"0.5, got {shift!r}"
            )


def model_run_launch(
    *,
    name: str,
    kind: str,
    colour_space: str,
    dataset: Dataset,
    config: dict | None = None,
    user=None,
) -> ModelRun:
    """Create a run and its sub-models and queue their training (after the commit)."""
    from worker.services.recovery import work_send

    if kind not in (ModelRun.Kind.BASELINE, ModelRun.Kind.ENSEMBLE):
        raise RunError(f"a trained run is a baseline or an ensemble, not {kind!r}")
    if colour_space not in ("lab", "yuv"):
        raise RunError(f"colour space must be lab or yuv, not {colour_space!r}")
    categories = list(dataset.categories)
    if kind == ModelRun.Kind.ENSEMBLE and len(categories) < 2:
        raise RunError(f"an ensemble needs a data set with categories; {dataset.name} has none")
    for split in ("train", "val", "test"):
        if not dataset.images.filter(split=split).exists():
            raise RunError(f"data set {dataset.name} has no {split} images")
    config = _merged(default_config(kind=kind, categories=categories), config or {})
    _validate_config(config, kind)

    with transaction.atomic():
        run = ModelRun.objects.create(
            name=name.strip() or f"{kind} {colour_space}",
            kind=kind,
            colour_space=colour_space,
            dataset=dataset,
            config=config,
            created_by=user,
            owner=user,
        )
        if kind == ModelRun.Kind.BASELINE:
            specs = [(SubModel.Role.GENERATOR, "")]
        else:
            specs = [(SubModel.Role.CLASSIFIER, "")] + [
                (SubModel.Role.GENERATOR, c) for c in categories
            ]
        submodels = [
            SubModel.objects.create(run=run, role=role, category=category)
            for role, category in specs
        ]
        for sm in submodels:
            work_send(sm)
    return run


@dataclass(frozen=True)
class Claim:
    submodel: SubModel
    token: uuid.UUID


def submodel_claim(*, submodel_id: int) -> Claim | None:
    """Take a sub-model for training; None when there is nothing (more) to do."""
    with transaction.atomic():
        sm = SubModel.objects.select_for_update().select_related("run").filter(pk=submodel_id)
        sm = sm.first()
        if sm is None:
            return None
        run = sm.run
        if run.cancel_requested or run.status in (
            ModelRun.Status.CANCELLED,
            ModelRun.Status.FAILED,
        ):
            if sm.status in (SubModel.Status.QUEUED, SubModel.Status.RUNNING):
                sm.status = SubModel.Status.CANCELLED
                sm.finished_at = timezone.now()
                sm.save(update_fields=["status", "finished_at"])
            _after_submodel_change(run.pk)
            return None
        if sm.status in (SubModel.Status.DONE, SubModel.Status.FAILED, SubModel.Status.CANCELLED):
            return None
        if sm.status == SubModel.Status.RUNNING and not claim_is_stale(sm, ClaimFields()):
            return None
        token = uuid.uuid4()
        now = timezone.now()
        sm.status = SubModel.Status.RUNNING
        sm.claim_token = token
        sm.attempts += 1
        sm.worker = worker_identity()
        sm.heartbeat_at = now
        sm.started_at = sm.started_at or now
        sm.save()
        if run.status == ModelRun.Status.QUEUED:
            run.status = ModelRun.Status.RUNNING
            run.started_at = now
            run.save(update_fields=["status", "started_at"])
        return Claim(sm, token)


def submodel_report(*, claim: Claim, **fields) -> None:
    """Write progress under the claim; raises ClaimLost if the claim was replaced."""
    updated = SubModel.objects.filter(pk=claim.submodel.pk, claim_token=claim.token).update(
        heartbeat_at=timezone.now(), **fields
    )
    if not updated:
        raise ClaimLost(f"{claim.submodel} was claimed by another attempt")


def run_cancel_requested(*, run_id: int) -> bool:
    return ModelRun.objects.filter(pk=run_id, cancel_requested=True).exists()


def submodel_finish(*, claim: Claim, status: str, reason: str = "", **fields) -> None:
    with transaction.atomic():
        updated = SubModel.objects.filter(pk=claim.submodel.pk, claim_token=claim.token).update(
            status=status,
            failure_reason=reason[:4000],
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
            **fields,
        )
        if not updated:
            raise ClaimLost(f"{claim.submodel} was claimed by another attempt")
        if status == SubModel.Status.FAILED:
            label = SubModel.objects.get(pk=claim.submodel.pk).label
            ModelRun.objects.filter(pk=claim.submodel.run_id).update(cancel_requested=True)
            _fail_run(claim.submodel.run_id, f"{label} failed: {reason}")
        _after_submodel_change(claim.submodel.run_id)


def submodel_give_back(*, claim: Claim) -> None:
    """Put a claimed sub-model back in the queue and send its task again (its training was
    stopped for a reason of another's: it resumes from its last checkpoint, here or on any
    worker). Raises ClaimLost if the claim was replaced."""
    from worker.services.recovery import work_kind, work_send

    with transaction.atomic():
        sm = (
            SubModel.objects.select_for_update()
            .filter(pk=claim.submodel.pk, claim_token=claim.token)
            .first()
        )
        if sm is None:
            raise ClaimLost(f"{claim.submodel} was claimed by another attempt")
        work_kind(sm).release(sm)
        work_send(sm)


def _fail_run(run_id: int, reason: str) -> None:
    ModelRun.objects.filter(pk=run_id, status__in=ModelRun.ACTIVE).update(
        status=ModelRun.Status.FAILED, failure_reason=reason[:4000], finished_at=timezone.now()
    )


def _after_submodel_change(run_id: int) -> None:
    """Move the run on once its sub-models are all settled: evaluate, or end it."""
    from worker.services.recovery import work_send

    with transaction.atomic():
        run = ModelRun.objects.select_for_update().get(pk=run_id)
        statuses = set(run.submodels.values_list("status", flat=True))
        if statuses & {SubModel.Status.QUEUED, SubModel.Status.RUNNING}:
            return
        if run.status not in (ModelRun.Status.QUEUED, ModelRun.Status.RUNNING):
            return
        if statuses == {SubModel.Status.DONE} and not run.cancel_requested:
            run.status = ModelRun.Status.EVALUATING
            run.heartbeat_at = timezone.now()
            run.claim_token = None
            run.save(update_fields=["status", "heartbeat_at", "claim_token"])
            work_send(run)
        elif SubModel.Status.FAILED in statuses:
            run.status = ModelRun.Status.FAILED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])
        else:
            run.status = ModelRun.Status.CANCELLED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])


def model_run_cancel(*, run: ModelRun) -> ModelRun:
    """Ask a run to stop: queued work is cancelled now, running work within a step or so."""
    with transaction.atomic():
        # Its sub-models' rows before its own: the order of a claim, a finish and the
        # sweep (the other order deadlocked with a training task claiming one of them).
        list(SubModel.objects.select_for_update().filter(run_id=run.pk).order_by("pk").values("pk"))
        run = ModelRun.objects.select_for_update().get(pk=run.pk)
        if not run.is_active:
            raise RunError(f"run {run.pk} is {run.status}; there is nothing to cancel")
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
        run.submodels.filter(status=SubModel.Status.QUEUED).update(
            status=SubModel.Status.CANCELLED, finished_at=timezone.now()
        )
        if run.status == ModelRun.Status.EVALUATING:
            run.status = ModelRun.Status.CANCELLED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])
    _after_submodel_change(run.pk)
    run.refresh_from_db()
    return run


def runs_sweep_stale(*, max_attempts: int | None = None) -> list[str]:
    """The heartbeat sweep of all background work (:func:`worker.services.recovery.
    recovery_sweep`), under the name the run pages and commands know."""
    from worker.services.recovery import recovery_sweep

    return recovery_sweep(max_attempts=max_attempts)
