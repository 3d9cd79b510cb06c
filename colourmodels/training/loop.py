"""The epoch loop both trainers share; each passes in what differs as an :class:`EpochTask`.

:func:`run_epochs` does, for the Pix2Pix and the classifier trainer alike: under ``torchrun``
the process group (:class:`~colourmodels.training.distributed.Session`; this process's
device and share of the global batch); the run folder; the seeding; ``checkpoint.pt``
read back (on rank 0, sent to every rank) and checked against the configuration; the RNG
state and the history restored from it; the loaders; per epoch the re-seeding under
torchrun, the task's epoch, the record's ``seconds``, then on rank 0 the task's model files
and ``checkpoint.pt`` written atomically, then the "epoch" progress event; and at the end the
ranks' fingerprints. The task brings its networks and optimisers, one epoch's training and
validation, its best-epoch bookkeeping and files, and its part of the checkpoint.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sized
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn
from torch.utils.data import Dataset

from colourmodels.checkpoints import CheckpointError, atomic_save, read_file
from colourmodels.training import distributed
from colourmodels.training.common import (
    EpochLoader,
    ProgressCallback,
    ProgressEvent,
    check_resume_config,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
    train_and_val_loaders,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointFormat",
    "EpochTask",
    "LoopConfig",
    "PhaseReport",
    "Progress",
    "RunContext",
    "Trained",
    "read_checkpoint",
    "run_epochs",
]

#: The training checkpoint's name in the run folder.
CHECKPOINT_FILE = "checkpoint.pt"

T = TypeVar("T", bound="EpochTask")


@dataclass(frozen=True)
class CheckpointFormat:
    """What marks one trainer's ``checkpoint.pt``: its format name and version, what errors
    call it, and the configuration fields that may change between a run and its resumption."""

    name: str
    version: int
    label: str
    resumable: frozenset[str]


class LoopConfig(Protocol):
    """The configuration fields the loop reads (both trainers' config dataclasses have them)."""

    epochs: int
    batch_size: int
    seed: int
    device: str
    num_workers: int
    log_every: int
    data_path: str

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunContext:
    """What a task is built with: where this process trains and what it resumes from."""

    out_dir: Path
    device: torch.device
    #: This process's place under torchrun; None in a single process.
    ddp: distributed.Distributed | None
    #: The checkpoint resumed from (its task's entries included), or None.
    state: dict[str, Any] | None

    @property
    def main(self) -> bool:
        """True where files are written and progress reported (one process, or rank 0)."""
        return self.ddp is None or self.ddp.is_main


class PhaseReport:
    """Progress events of one phase ("train" or "val") of one epoch. ``step(i, names, sums,
    count)`` after batch ``i``: the running means ``sums / count`` (a tensor, one value per
    name) are copied to the host every ``every`` batches and at the last one, and repeated in
    between; without ``sums`` the events carry no losses."""

    def __init__(
        self, on_progress: ProgressCallback | None, phase: str, epoch: int, steps: int, every: int
    ) -> None:
        self.on_progress = on_progress
        self.phase, self.epoch, self.steps, self.every = phase, epoch, steps, every
        self.shown: dict[str, float] = {}

    def step(
        self,
        i: int,
        names: tuple[str, ...] = (),
        sums: torch.Tensor | None = None,
        count: int = 0,
    ) -> None:
        if self.on_progress is None:
            return
        if sums is not None and (i % self.every == 0 or i == self.steps):
            self.shown = dict(zip(names, (sums / count).tolist()))
        self.on_progress(ProgressEvent(self.phase, self.epoch, i, self.steps, self.shown))


@dataclass(frozen=True)
class Progress:
    """The caller's ``on_progress`` (None on ranks other than 0) and how often running means
    are copied to the host (every batch off CUDA, else every ``log_every``)."""

    on_progress: ProgressCallback | None
    sync_every: int

    def phase(self, phase: str, epoch: int, batches: Sized) -> PhaseReport:
        return PhaseReport(self.on_progress, phase, epoch, len(batches), self.sync_every)


class EpochTask(Protocol):
    """The part of a trainer that differs: built (by the ``build`` given to
    :func:`run_epochs`) after the seeding, from a :class:`RunContext`; it builds its networks
    and optimisers and loads its entries of ``context.state`` when resuming."""

    @property
    def finished(self) -> bool:
        """True when the checkpoint resumed from ended the run (early stopping fired)."""
        ...

    def run_epoch(
        self, epoch: int, train: Any, val: Any, progress: Progress
    ) -> tuple[dict[str, Any], bool]:
        """Train on ``train``'s batches, validate on ``val``'s, update the best epoch; return
        the history record (all but its ``seconds``) and whether to stop after this epoch."""
        ...

    def save(self, epoch: int, record: dict[str, Any]) -> None:
        """Write this epoch's model files (rank 0 only; before ``checkpoint.pt``)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The task's entries of ``checkpoint.pt`` (networks, optimisers, best epoch, ...)."""
        ...

    def modules(self) -> tuple[nn.Module, ...]:
        """The networks whose replicas must agree across ranks at the end."""
        ...


@dataclass
class Trained:
    """What :func:`run_epochs` hands back with its task."""

    history: list[dict[str, Any]]
    last_epoch: int
    out_dir: Path
    checkpoint_path: Path
    #: Under torchrun: ``world_size``, ``backend``, ``per_rank_batch``, each rank's
    #: ``fingerprints`` of the task's networks and ``replicas_identical``; else None.
    distributed: dict[str, Any] | None

    def result_fields(self) -> dict[str, Any]:
        """These fields by name, for the trainer's result (which has them all)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def run_epochs(
    config: LoopConfig,
    train_set: Dataset,
    val_set: Dataset,
    out_dir: str | Path,
    *,
    checkpoint: CheckpointFormat,
    build: Callable[[RunContext], T],
    on_progress: ProgressCallback | None,
    resume: bool,
    drop_last_train: bool = False,
) -> tuple[Trained, T]:
    """Train ``build(context)``'s task for epochs ``config.epochs`` at most (see the module
    doc), resuming from ``out_dir/checkpoint.pt`` if ``resume`` and it exists.
    ``drop_last_train``: leave out a last, smaller training batch (see
    :func:`~colourmodels.training.common.train_and_val_loaders`)."""
    with distributed.Session(config.device) as ddp:
        context, batch_size = _open(
            config, train_set, val_set, Path(out_dir), checkpoint, resume, ddp
        )
        task = build(context)
        history: list[dict[str, Any]] = []
        last_epoch = 0
        if context.state is not None:
            history, last_epoch = list(context.state["history"]), int(context.state["epoch"])
            set_rng_state(context.state["rng"], context.device)
        if not task.finished:
            loaders = train_and_val_loaders(
                train_set,
                val_set,
                data_path=config.data_path,
                device=context.device,
                batch_size=batch_size,
                seed=config.seed,
                num_workers=config.num_workers,
                drop_last_train=drop_last_train,
                shard=(ddp.rank, ddp.world_size) if ddp is not None else None,
            )
            sync_every = config.log_every if context.device.type == "cuda" else 1
            progress = Progress(on_progress if context.main else None, sync_every)
            last_epoch = _epochs(config, checkpoint, context, task, loaders, progress, history)
        info = None if ddp is None else _replicas(ddp, batch_size, task.modules())
    ckpt_path = context.out_dir / CHECKPOINT_FILE
    return Trained(history, last_epoch, context.out_dir, ckpt_path, info), task


def _epochs(
    config: LoopConfig,
    fmt: CheckpointFormat,
    context: RunContext,
    task: EpochTask,
    loaders: tuple[EpochLoader, EpochLoader],
    progress: Progress,
    history: list[dict[str, Any]],
) -> int:
    """The epochs after ``history``'s, appended to it; returns the last one trained."""
    ddp, device = context.ddp, context.device
    last_epoch = int(history[-1]["epoch"]) if history else 0
    for epoch in range(last_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        if ddp is not None:
            ddp.reseed(config.seed, epoch)
        train, val = (loader(epoch) for loader in loaders)
        record, stop = task.run_epoch(epoch, train, val, progress)
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if context.main:
            task.save(epoch, record)
            saved = {
                "format": fmt.name,
                "version": fmt.version,
                "config": config.to_dict(),
                "epoch": epoch,
                **task.state_dict(),
                "history": history,
                "rng": rng_state(device),
            }
            if ddp is not None:
                saved["world_size"] = ddp.world_size
            atomic_save(saved, context.out_dir / CHECKPOINT_FILE)
        last_epoch = epoch
        if progress.on_progress is not None:
            numbers = {k: v for k, v in record.items() if isinstance(v, int | float)}
            progress.on_progress(ProgressEvent("epoch", epoch, epoch, config.epochs, numbers, stop))
        if stop:
            break
    return last_epoch


def _open(
    config: LoopConfig,
    train_set: Dataset,
    val_set: Dataset,
    out_dir: Path,
    fmt: CheckpointFormat,
    resume: bool,
    ddp: distributed.Distributed | None,
) -> tuple[RunContext, int]:
    """The run folder made (rank 0), the data checked, the device and this process's
    batch size, the RNGs seeded, the checkpoint read back (None without one or with
    ``resume=False``)."""
    main = ddp is None or ddp.is_main
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError("the training and validation sets must not be empty")
    ckpt_path = out_dir / CHECKPOINT_FILE
    device = ddp.device if ddp is not None else resolve_device(config.device)
    batch_size = config.batch_size
    if ddp is not None:
        batch_size = distributed.per_rank_batch(config.batch_size, ddp.world_size)
    seed_everything(config.seed)

    def read() -> dict[str, Any] | None:
        if not (resume and ckpt_path.exists()):
            return None
        return read_checkpoint(ckpt_path, fmt, config.to_dict())

    # Under torchrun rank 0 reads the checkpoint and every rank loads the same state. Reading
    # draws nothing from the RNGs, so the task's networks start as they would without it.
    state = read() if ddp is None else ddp.share(read)
    return RunContext(out_dir, device, ddp, state), batch_size


def _replicas(
    ddp: distributed.Distributed, batch_size: int, modules: tuple[nn.Module, ...]
) -> dict[str, Any]:
    """The result's ``distributed`` entry; a warning (rank 0) if the replicas differ."""
    prints = ddp.gather(distributed.state_fingerprint(*modules))
    identical = len(set(prints)) == 1
    if ddp.is_main and not identical:
        warnings.warn(
            "the ranks' networks differ at the end of training; rank 0's are saved",
            stacklevel=4,
        )
    return {
        **ddp.describe(),
        "per_rank_batch": batch_size,
        "fingerprints": prints,
        "replicas_identical": identical,
    }


def read_checkpoint(path: Path, fmt: CheckpointFormat, config: dict[str, Any]) -> dict[str, Any]:
    """``path``'s training checkpoint: ``CheckpointError`` unless it is of format ``fmt``,
    :class:`~colourmodels.training.common.ConfigMismatchError` if it was written with a
    configuration that differs from ``config`` outside ``fmt.resumable``."""
    state = read_file(path, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != fmt.name:
        raise CheckpointError(f"{path} is not a {fmt.label}")
    if state.get("version") != fmt.version:
        raise CheckpointError(f"{path}: unsupported checkpoint version {state.get('version')!r}")
    check_resume_config(state["config"], config, may_differ=set(fmt.resumable), path=path)
    return state
