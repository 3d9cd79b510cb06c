"""Training one sub-model of a run on this worker (torch is imported here, in the task)."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import socket
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connections

from colourmodels.cpus import usable_cpus
from colourmodels.numbers import finite_or_none
from worker.models import DatasetImage, EpochRecord, ModelRun, SubModel
from worker.services.runs import (
    Claim,
    ClaimLost,
    run_cancel_requested,
    submodel_claim,
    submodel_finish,
    submodel_give_back,
    submodel_report,
)

#: Progress is written to the database at most once per this many seconds.
REPORT_INTERVAL = 1.0


def storage_dataset(*, run: ModelRun, split: str, category: str | None, train: bool):
    """A ColourisationDataset over a data set's images read through Django's storage."""
    from colourmodels.data.dataset import ColourisationDataset, resize_square
    from colourmodels.data.folders import ImageRecord
    from colourmodels.data.images import load_rgb

    class StorageDataset(ColourisationDataset):
        def _load_square(self, i):
            name = str(self.records[i].path)
            with default_storage.open(name, "rb") as f:
                image = load_rgb(f, name=name, max_pixels=self.max_pixels)
            return resize_square(image, self.image_size)

    rows = DatasetImage.objects.filter(dataset=run.dataset, split=split)
    if category:
        rows = rows.filter(category=category)
    rows = list(rows.order_by("id").values_list("pk", "file", "category"))
    records = [ImageRecord(Path(name), cat or None) for _, name, cat in rows]
    dataset = StorageDataset(
        records,
        run.colour_space,
        run.config["image_size"],
        categories=list(run.dataset.categories),
        train=train,
    )
    return dataset, [pk for pk, _, _ in rows]


def environment() -> dict:
    import torch

    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "git_commit": commit or "unknown",
    }


class _Reporter:
    """Turns trainer progress into throttled database writes, epoch records and checks for
    cancellation."""

    def __init__(self, claim: Claim, scratch: Path, storage_dir: str):
        self.claim = claim
        self.scratch = scratch
        self.storage_dir = storage_dir
        self.last = 0.0
        self.epoch_started = time.monotonic()
        self.epoch_seconds: list[float] = []

    def __call__(self, event) -> None:
        from colourmodels.training import TrainingCancelled

        now = time.monotonic()
        if event.phase == "epoch":
            self._epoch_done(event)
            self.epoch_started = now
            return
        if now - self.last < REPORT_INTERVAL and event.step != event.steps:
            return
        self.last = now
        fields = {"step": event.step, "steps": event.steps, "epoch": event.epoch}
        if event.phase == "train":
            fields["losses"] = {k: json_safe(round(v, 5)) for k, v in event.losses.items()}
            fields["eta_seconds"] = self._eta(event)
        submodel_report(claim=self.claim, **fields)
        if run_cancel_requested(run_id=self.claim.submodel.run_id):
            raise TrainingCancelled("cancelled by a researcher")

    def _eta(self, event) -> float | None:
        sm = self.claim.submodel
        elapsed = time.monotonic() - self.epoch_started
        if event.step == 0:
            return None
        per_epoch = (
            self.epoch_seconds[-1] if self.epoch_seconds else elapsed * event.steps / event.step
        )
        left_in_epoch = per_epoch * (1 - event.step / event.steps)
        return round(left_in_epoch + per_epoch * max(0, sm.epochs - event.epoch), 1)

    def _epoch_done(self, event) -> None:
        values = {k: json_safe(v) for k, v in event.losses.items()}
        values["attempt"] = self.claim.submodel.attempts
        EpochRecord.objects.update_or_create(
            submodel_id=self.claim.submodel.pk, epoch=event.epoch, defaults={"values": values}
        )
        self.epoch_seconds.append(time.monotonic() - self.epoch_started)
        upload(self.scratch / "checkpoint.pt", f"{self.storage_dir}/checkpoint.pt")
        submodel_report(claim=self.claim, epoch=event.epoch, step=0)
        share_cores()


def share_cores() -> int | None:
    """The run command's worker (``WORKER_SHARE_CORES``, set by
    :func:`studyplatform.launcher.worker_environment` with its one thread per process): this
    machine's cores shared among the sub-models it is training now (counted by their claims),
    so that the last one running uses the cores the others have freed. Measured: the demo's
    router trained 45 epochs on one thread for 5 minutes while the other core idled.
    Returns the thread count set (None: left alone)."""
    if os.environ.get("WORKER_SHARE_CORES") != "1":
        return None
    import torch

    cores = usable_cpus()
    running = (  # processes: the generators a process trains together share its threads
        SubModel.objects.filter(
            status=SubModel.Status.RUNNING, worker__startswith=f"{socket.gethostname()}:"
        )
        .values("worker")
        .distinct()
        .count()
    )
    threads = max(1, cores // max(1, running))
    torch.set_num_threads(threads)
    return threads


def json_safe(value):
    """NaN and infinities (a diverging loss) as None: PostgreSQL's JSON refuses them."""
    return finite_or_none(value) if isinstance(value, float) else value


def upload(local: Path, name: str) -> str:
    if default_storage.exists(name):
        default_storage.delete(name)
    with local.open("rb") as f:
        return default_storage.save(name, File(f))


def _restore_checkpoint(scratch: Path, storage_dir: str) -> None:
    """Resume on any worker: fetch the last checkpoint from storage if it is not here."""
    local = scratch / "checkpoint.pt"
    remote = f"{storage_dir}/checkpoint.pt"
    if not local.exists() and default_storage.exists(remote):
        scratch.mkdir(parents=True, exist_ok=True)
        with default_storage.open(remote, "rb") as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _train_generator(run: ModelRun, sm: SubModel, scratch: Path, reporter: _Reporter):
    from colourmodels.ensemble import train_generator

    train_set, _ = storage_dataset(run=run, split="train", category=sm.category, train=True)
    val_set, _ = storage_dataset(run=run, split="val", category=sm.category, train=False)
    result = train_generator(
        run.config,
        space=run.colour_space,
        category=sm.category,
        train_set=train_set,
        val_set=val_set,
        out_dir=scratch,
        on_progress=reporter,
    )
    return result, result.best_generator_path, result.last_generator_path


def _train_classifier(run: ModelRun, sm: SubModel, scratch: Path, reporter: _Reporter):
    from colourmodels.ensemble import train_router

    train_set, _ = storage_dataset(run=run, split="train", category=None, train=True)
    val_set, _ = storage_dataset(run=run, split="val", category=None, train=False)
    result = train_router(
        run.config,
        list(run.dataset.categories),
        train_set=train_set,
        val_set=val_set,
        out_dir=scratch,
        on_progress=reporter,
    )
    return result, result.best_classifier_path, result.last_classifier_path


def _record_missing_epochs(sm: SubModel, history: list[dict]) -> None:
    """An epoch whose checkpoint was written but whose record was not (the worker died in
    between) is recorded from the trainer's own history, marked as recovered."""
    have = set(EpochRecord.objects.filter(submodel=sm).values_list("epoch", flat=True))
    EpochRecord.objects.bulk_create(
        [
            EpochRecord(
                submodel=sm,
                epoch=row["epoch"],
                values={**{k: json_safe(v) for k, v in row.items()}, "attempt": "recovered"},
            )
            for row in history
            if row["epoch"] not in have
        ]
    )


@dataclass
class _Attempt:
    """One claimed sub-model on this worker: where it trains and how it reports."""

    claim: Claim
    scratch: Path
    storage_dir: str
    reporter: _Reporter

    @property
    def submodel(self) -> SubModel:
        return self.claim.submodel


def _begin(claim: Claim) -> _Attempt:
    """The sub-model's scratch folder with its last checkpoint, its epoch count reported."""
    sm = claim.submodel
    run = sm.run
    if not run.environment:
        ModelRun.objects.filter(pk=run.pk).update(environment=environment())
    storage_dir = f"{run.storage_prefix}/{sm.role}-{sm.category or 'all'}"
    scratch = settings.WORKER_SCRATCH_DIR / run.uid.hex / f"{sm.role}-{sm.category or 'all'}"
    scratch.mkdir(parents=True, exist_ok=True)
    _restore_checkpoint(scratch, storage_dir)
    epochs = (
        run.config["epochs"]
        if sm.role == SubModel.Role.GENERATOR
        else run.config["classifier"]["epochs"]
    )
    submodel_report(claim=claim, epochs=epochs)
    sm.epochs = epochs
    return _Attempt(claim, scratch, storage_dir, _Reporter(claim, scratch, storage_dir))


def _end_done(attempt: _Attempt, result, best: Path, last: Path) -> None:
    """The trained sub-model's files to storage and its row done."""
    _record_missing_epochs(attempt.submodel, result.history)
    artefacts = {
        "best": upload(best, f"{attempt.storage_dir}/{best.name}"),
        "last": upload(last, f"{attempt.storage_dir}/{last.name}"),
        "checkpoint": f"{attempt.storage_dir}/checkpoint.pt",
    }
    submodel_finish(
        claim=attempt.claim,
        status=SubModel.Status.DONE,
        best_epoch=result.best_epoch,
        stopped_epoch=getattr(result, "stopped_epoch", None),
        artefacts=artefacts,
        step=0,
        eta_seconds=0,
    )
    shutil.rmtree(attempt.scratch, ignore_errors=True)


def _end_failed(attempt: _Attempt, exc: Exception) -> bool:
    """A training that raised: cancelled, taken over by another attempt, or failed (then
    the reason goes on the row and the run fails). Returns whether it failed."""
    from colourmodels.training import TrainingCancelled

    if isinstance(exc, TrainingCancelled):
        submodel_finish(claim=attempt.claim, status=SubModel.Status.CANCELLED)
        return False
    if isinstance(exc, ClaimLost):
        return False
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    submodel_finish(claim=attempt.claim, status=SubModel.Status.FAILED, reason=detail)
    return True


def submodel_train(*, submodel_id: int) -> None:
    """Train (or resume) one sub-model; all outcomes end up on its row. With
    ``WORKER_GENERATORS_TOGETHER``, a generator's task also takes the run's other
    generators that no worker holds and trains them together (:func:`_train_together`)."""
    claim = submodel_claim(submodel_id=submodel_id)
    if claim is None:
        return
    if claim.submodel.role == SubModel.Role.GENERATOR and settings.WORKER_GENERATORS_TOGETHER:
        claims = [claim, *_claim_other_generators(claim.submodel)]
        if len(claims) > 1:
            _train_together(claims)
            return
    attempt = _begin(claim)
    sm = attempt.submodel
    trainer = _train_generator if sm.role == SubModel.Role.GENERATOR else _train_classifier
    try:
        result, best, last = trainer(sm.run, sm, attempt.scratch, attempt.reporter)
    except Exception as exc:
        if _end_failed(attempt, exc):
            raise
        return
    _end_done(attempt, result, best, last)


def _claim_other_generators(sm: SubModel) -> list[Claim]:
    """The claims this worker could take on the other generators of ``sm``'s run (those
    queued, or held by an attempt that is gone)."""
    others = (
        SubModel.objects.filter(run_id=sm.run_id, role=SubModel.Role.GENERATOR)
        .exclude(pk=sm.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [c for pk in others if (c := submodel_claim(submodel_id=pk)) is not None]


def _train_together(claims: list[Claim]) -> None:
    """Train the claimed generators of one run stepped together in this process
    (:func:`colourmodels.ensemble.train_generators`, ``together``: on a GPU their steps
    overlap; each result is the one it would have alone). Each sub-model's row is settled as
    its own training ends: done (its early stopping came first), cancelled, failed, or, when
    another's failure or lost claim stopped it, back in the queue."""
    from colourmodels.ensemble import GeneratorJob, data_problem, train_generators
    from colourmodels.training import TrainingCancelled

    attempts = [_begin(claim) for claim in claims]
    run = attempts[0].submodel.run
    jobs = []
    for attempt in attempts:
        category = attempt.submodel.category
        train_set, _ = storage_dataset(run=run, split="train", category=category, train=True)
        val_set, _ = storage_dataset(run=run, split="val", category=category, train=False)
        if problem := data_problem(category, train_set, val_set):
            _end_failed(attempt, ValueError(problem))  # the run fails: the others stop
            for other in attempts:
                if other is not attempt:
                    _end_stopped(other)
            raise ValueError(problem)
        jobs.append(
            GeneratorJob(
                category,
                train_set,
                val_set,
                attempt.scratch,
                on_progress=attempt.reporter,
                on_end=functools.partial(_lane_end, attempt),
            )
        )
    try:
        train_generators(run.config, jobs, space=run.colour_space, together=True)
    except Exception as exc:  # each row is settled already (_lane_end)
        if not isinstance(exc, TrainingCancelled | ClaimLost):
            raise


def _lane_end(attempt: _Attempt, result, error: BaseException | None) -> None:
    """A generator of a stack has ended (in its own thread: see ``_train_together``)."""
    try:
        if result is not None:
            _end_done(attempt, result, result.best_generator_path, result.last_generator_path)
        elif isinstance(error, Exception):
            _end_failed(attempt, error)
        elif error is None:
            _end_stopped(attempt)
    except ClaimLost:
        pass
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()  # this thread's own connection


def _end_stopped(attempt: _Attempt) -> None:
    """A generator stopped by another's end: cancelled with its run, else queued again."""
    if run_cancel_requested(run_id=attempt.submodel.run_id):
        submodel_finish(claim=attempt.claim, status=SubModel.Status.CANCELLED)
    else:
        submodel_give_back(claim=attempt.claim)
