"""Training a Pix2Pix colouriser with early stopping, checkpoints and exact resume."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from colourmodels.checkpoints import cpu_state_dict, save_generator
from colourmodels.early_stopping import PAPER_SETTINGS, EarlyStopping, EarlyStoppingConfig
from colourmodels.networks import PatchDiscriminator, UNetGenerator, init_weights
from colourmodels.training import distributed
from colourmodels.training.common import DATA_PATHS, ProgressCallback, batch_luma_chroma
from colourmodels.training.loop import (
    CheckpointFormat,
    PhaseReport,
    Progress,
    RunContext,
    run_epochs,
)
from colourmodels.training.performance import PerformanceOptions
from colourmodels.training.step import EVAL_LOSSES, STEP_LOSSES, Pix2PixStep

__all__ = [
    "Pix2PixConfig",
    "Pix2PixResult",
    "train_pix2pix",
    "HISTORY_KEYS",
    "CHECKPOINT_FORMAT",
    "Stepper",
]

#: How a training step is run: ``stepper(step, luma, chroma)`` returns what
#: ``step.step_tensor(luma, chroma)`` returns (the stacked trainer's rendezvous).
Stepper = Callable[[Pix2PixStep, torch.Tensor, torch.Tensor], torch.Tensor]

CHECKPOINT_FORMAT = "colourmodels.pix2pix.checkpoint"
CHECKPOINT_VERSION = 1

#: Keys of each per-epoch history record.
HISTORY_KEYS = (
    "epoch",
    "train_gan",
    "train_l1",
    "train_total",
    "train_d",
    "val_gan",
    "val_l1",
    "val_total",
    "gl",
    "pk",
    "seconds",
)
_TRAIN_KEYS = {
    "d_loss": "train_d",
    "g_gan": "train_gan",
    "g_l1": "train_l1",
    "g_total": "train_total",
}
_TRAIN_NAMES = tuple(_TRAIN_KEYS[k] for k in STEP_LOSSES)
_VAL_NAMES = tuple(f"val_{k}" for k in EVAL_LOSSES)

#: Config fields that may change between a run and its resumption: they do not change what
#: is computed (``epochs`` may be raised to train further; ``data_path`` gives the same
#: inputs, bit for bit on the CPU).
RESUMABLE_CHANGES = frozenset({"epochs", "device", "num_workers", "perf", "log_every", "data_path"})
CHECKPOINT = CheckpointFormat(
    CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "Pix2Pix training checkpoint", RESUMABLE_CHANGES
)

_COLOUR_SPACES = ("lab", "yuv")


@dataclass(frozen=True)
class Pix2PixConfig:
    """Everything that defines a Pix2Pix training run (method.md sections 3 and 4).

    ``width`` is the base width of both the generator (ngf) and the discriminator (ndf).
    ``early_stopping=None`` trains for ``epochs`` epochs; the best generator is then the one
    with the lowest validation total loss. ``colour_space`` is recorded with the generators;
    the dataset's own ``space`` decides the conversion (``colour_space`` is used for uint8
    batches of a dataset without one). ``log_every``: on CUDA, progress losses are copied to
    the host every that many steps (see :class:`~colourmodels.training.common.ProgressEvent`).

    ``data_path``: where images become (luma, chroma). "cpu": in the dataset (its loader
    workers). "device": datasets with ``with_output`` (``ColourisationDataset``) yield uint8
    RGB and each batch is converted on the training device
    (:func:`colourmodels.data.device.batch_to_luma_chroma`), which takes the colour
    conversion off the loader workers and sends 3 bytes a pixel instead of 12. "auto" (the
    default): "device" on CUDA, "cpu" otherwise. Both give the same inputs (bit-identical on
    the CPU; on CUDA within float rounding, < 1e-6), so it may change on resume. Other
    datasets are used as they are.
    """

    image_size: int
    width: int = 64
    in_channels: int = 1
    out_channels: int = 2
    epochs: int = 200
    batch_size: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    early_stopping: EarlyStoppingConfig | None = field(
        default_factory=lambda: PAPER_SETTINGS["baseline"]
    )
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    perf: PerformanceOptions = field(default_factory=PerformanceOptions)
    colour_space: str = "lab"
    log_every: int = 50
    data_path: str = "auto"

    def __post_init__(self) -> None:
        # Accept a str-Enum (colourmodels.colour.ColourSpace) and store its plain value.
        space = str(getattr(self.colour_space, "value", self.colour_space)).lower()
        object.__setattr__(self, "colour_space", space)
        if space not in _COLOUR_SPACES:
            raise ValueError(f"colour_space must be one of {_COLOUR_SPACES}, got {space!r}")
        size = self.image_size
        if not isinstance(size, int) or size < 32 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 32, got {size!r}")
        for name in ("width", "in_channels", "out_channels", "epochs", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.num_workers < 0:
            raise ValueError("num_workers must be >= 0")
        if self.data_path not in DATA_PATHS:
            raise ValueError(f"data_path must be one of {DATA_PATHS}, got {self.data_path!r}")
        if not (self.lr > 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError("need lr > 0 and betas in [0, 1)")
        if self.lambda_l1 < 0:
            raise ValueError("lambda_l1 must be >= 0")

    @property
    def monitor(self) -> str:
        return self.early_stopping.monitor if self.early_stopping is not None else "total"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["early_stopping"] = (
            self.early_stopping.to_dict() if self.early_stopping is not None else None
        )
        d["perf"] = self.perf.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pix2PixConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown Pix2PixConfig fields: {sorted(unknown)}")
        d = dict(d)
        if d.get("early_stopping") is not None and not isinstance(
            d["early_stopping"], EarlyStoppingConfig
        ):
            d["early_stopping"] = EarlyStoppingConfig.from_dict(d["early_stopping"])
        if "perf" in d and not isinstance(d["perf"], PerformanceOptions):
            d["perf"] = PerformanceOptions.from_dict(d["perf"])
        return cls(**d)


@dataclass
class Pix2PixResult:
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_val: float | None
    stopped_epoch: int | None
    last_epoch: int
    monitor: str
    out_dir: Path
    checkpoint_path: Path
    best_generator_path: Path
    last_generator_path: Path
    #: Under torchrun: ``world_size``, ``backend``, ``per_rank_batch``, each rank's
    #: ``fingerprints`` (SHA-256 of its generator and discriminator at the end) and
    #: ``replicas_identical``; None in a single process.
    distributed: dict[str, Any] | None = None


def _monitored(record: dict[str, Any], monitor: str) -> tuple[float, float]:
    return record[f"train_{monitor}"], record[f"val_{monitor}"]


def train_pix2pix(
    config: Pix2PixConfig,
    train_set: Dataset,
    val_set: Dataset,
    out_dir: str | Path,
    *,
    on_progress: ProgressCallback | None = None,
    resume: bool = True,
    stepper: Stepper | None = None,
) -> Pix2PixResult:
    """Train a Pix2Pix generator/discriminator pair; see the module and config docs.

    Datasets yield ``(luma, chroma, ...)`` with luma (in_channels, H, W) and chroma
    (out_channels, H, W), float32 in [-1, 1], H = W = ``config.image_size``; further items
    (the category) are ignored. Or ``(rgb uint8 (3, H, W), ...)``, converted on the device
    in the dataset's ``space`` (see ``Pix2PixConfig.data_path``, which switches a
    ``ColourisationDataset`` to that output).

    Each epoch: a training pass (``Pix2PixStep``), a validation pass in eval mode (generator
    GAN plain loss, L1 with λ, total, averaged over samples), the early-stopping update with
    the monitored (train, val) losses, then ``best_generator.pt`` (if the monitored validation
    loss improved), ``last_generator.pt`` and ``checkpoint.pt`` are written atomically in that
    order, then ``on_progress`` gets the "epoch" event. An exception from ``on_progress`` (e.g.
    :class:`~colourmodels.training.common.TrainingCancelled`) propagates; ``checkpoint.pt``
    then still holds the last complete epoch, and a call with ``resume=True`` continues from it
    (raising :class:`~colourmodels.training.common.ConfigMismatchError` if the configuration
    differs in a field outside ``RESUMABLE_CHANGES``). On the CPU a resumed run reproduces the
    uninterrupted run exactly. ``resume=False`` starts afresh, overwriting the folder's files.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) this trains one model data-parallel on all the
    processes (:mod:`colourmodels.training.distributed`): ``config.batch_size`` is the global
    batch (it must divide by the number of processes), only rank 0 writes files and gets
    ``on_progress`` events (the train/val events show rank 0's running means; the "epoch"
    event and the history hold the losses of all ranks), and every rank returns the same
    result, with ``distributed`` set. ``perf.cuda_graph`` and ``perf.compile`` are not used
    there (see :class:`Pix2PixStep`).

    ``stepper``: who runs each training step (default: ``step.step_tensor`` itself);
    :func:`colourmodels.training.stacked.train_pix2pix_stack` passes one that steps several
    models together.
    """
    trained, task = run_epochs(
        config,
        train_set,
        val_set,
        out_dir,
        checkpoint=CHECKPOINT,
        build=lambda context: _Pix2PixTask(config, context, train_set, val_set, stepper),
        on_progress=on_progress,
        resume=resume,
    )
    return Pix2PixResult(
        **trained.result_fields(),
        best_epoch=task.best_epoch,
        best_val=task.best_val if task.best_epoch is not None else None,
        stopped_epoch=task.stopped_epoch,
        monitor=config.monitor,
        best_generator_path=task.best_path,
        last_generator_path=task.last_path,
    )


class _Pix2PixTask:
    """The Pix2Pix part of the loop (:class:`~colourmodels.training.loop.EpochTask`): the
    generator, the discriminator and their step, early stopping, the generator files."""

    def __init__(
        self,
        config: Pix2PixConfig,
        context: RunContext,
        train_set: Dataset,
        val_set: Dataset,
        stepper: Stepper | None = None,
    ) -> None:
        self.config = config
        self.stepper = stepper
        self.ddp = context.ddp
        self.device = context.device
        self.best_path = context.out_dir / "best_generator.pt"
        self.last_path = context.out_dir / "last_generator.pt"
        self.train_space = getattr(train_set, "space", config.colour_space)
        self.val_space = getattr(val_set, "space", config.colour_space)
        self.generator = init_weights(
            UNetGenerator(config.in_channels, config.out_channels, config.image_size, config.width)
        )
        self.discriminator = init_weights(
            PatchDiscriminator(config.in_channels + config.out_channels, config.width)
        )
        early = config.early_stopping
        self.early = EarlyStopping.from_config(early) if early is not None else None
        state = context.state
        if state is not None:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
        self.step = Pix2PixStep(
            self.generator,
            self.discriminator,
            lr=config.lr,
            betas=(config.beta1, config.beta2),
            lambda_l1=config.lambda_l1,
            perf=config.perf,
            device=self.device,
            distributed=self.ddp is not None,
        )
        self.best_epoch: int | None = None
        self.best_val = math.inf
        self.stopped_epoch: int | None = None
        if state is not None:
            self.step.load_state_dict(state["optimizers"])
            if self.early is not None:
                self.early.load_state_dict(state["early_stopping"])
            self.best_epoch, self.best_val = state["best_epoch"], float(state["best_val"])
            self.stopped_epoch = state["stopped_epoch"]

    @property
    def finished(self) -> bool:
        return self.stopped_epoch is not None

    def run_epoch(
        self, epoch: int, train: Any, val: Any, progress: Progress
    ) -> tuple[dict[str, Any], bool]:
        self.generator.train()
        self.discriminator.train()
        report = progress.phase("train", epoch, train)
        step = self.step
        train_fn = (
            step.step_tensor
            if self.stepper is None
            else lambda luma, chroma: self.stepper(step, luma, chroma)
        )
        train_sums = _run_phase(
            train, train_fn, _TRAIN_NAMES, self.train_space, self.device, report
        )
        report = progress.phase("val", epoch, val)
        val_sums = _run_phase(
            val, self.step.evaluate_tensor, _VAL_NAMES, self.val_space, self.device, report
        )
        if self.ddp is not None:  # the losses of all ranks' samples, the same on every rank
            train_sums, val_sums = _reduced(self.ddp, train_sums), _reduced(self.ddp, val_sums)
        record: dict[str, Any] = {
            "epoch": epoch,
            **_means(train_sums),
            **_means(val_sums),
            "gl": None,
            "pk": None,
        }
        tr, va = _monitored(record, self.config.monitor)
        stop = False
        if self.early is not None:
            stop = self.early.update(epoch, tr, va)
            record["gl"], record["pk"], _ = self.early.last
            improved = self.early.improved
        else:
            improved = va < self.best_val
        if improved:
            self.best_epoch, self.best_val = epoch, va
        if stop:
            self.stopped_epoch = epoch
        return {k: record[k] for k in HISTORY_KEYS[:-1]}, stop  # all but "seconds"

    def save(self, epoch: int, record: dict[str, Any]) -> None:
        extra = {
            "val_losses": {k: record[k] for k in _VAL_NAMES},
            "monitor": self.config.monitor,
        }
        paths = [self.best_path, self.last_path] if self.best_epoch == epoch else [self.last_path]
        for path in paths:
            save_generator(
                self.generator,
                path,
                colour_space=self.config.colour_space,
                epoch=epoch,
                extra_meta=extra,
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": cpu_state_dict(self.generator),
            "discriminator": cpu_state_dict(self.discriminator),
            "optimizers": self.step.state_dict(),
            "early_stopping": self.early.state_dict() if self.early is not None else None,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "stopped_epoch": self.stopped_epoch,
        }

    def modules(self) -> tuple[torch.nn.Module, ...]:
        return self.generator, self.discriminator


def _run_phase(
    loader: Any,
    fn: Any,
    names: tuple[str, ...],
    space: Any,
    device: torch.device,
    report: PhaseReport,
) -> tuple[tuple[str, ...], torch.Tensor, int]:
    """Run ``fn(luma, chroma) -> packed losses`` over ``loader``. Returns ``(names, sums,
    count)``: the sample-weighted loss sums (float64, on ``device``) and the sample count.
    uint8 RGB batches are converted to (luma, chroma) in ``space`` on ``device`` first."""
    sums = torch.zeros(len(names), dtype=torch.float64, device=device)
    count = 0
    for i, batch in enumerate(loader, start=1):
        luma, chroma = batch_luma_chroma(batch, space, device)
        n = int(luma.shape[0])
        sums.add_(fn(luma, chroma), alpha=n)
        count += n
        report.step(i, names, sums, count)
    return names, sums, count


_Phase = tuple[tuple[str, ...], torch.Tensor, int]


def _reduced(ddp: distributed.Distributed, phase: _Phase) -> _Phase:
    """A phase's sums and count added over all ranks."""
    names, sums, count = phase
    return (names, *ddp.total_counted(sums, count))


def _means(phase: _Phase) -> dict[str, float]:
    names, sums, count = phase
    return dict(zip(names, (sums / count).tolist()))
