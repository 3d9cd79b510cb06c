"""Training the ResNet34 context classifier on luminance (method.md section 5)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from colourmodels.checkpoints import cpu_state_dict, save_classifier
from colourmodels.networks import build_classifier
from colourmodels.training import distributed
from colourmodels.training.classification_metrics import accuracy, confusion_matrix, macro_f1
from colourmodels.training.common import DATA_PATHS, ProgressCallback, batch_luma_chroma
from colourmodels.training.loop import (
    CheckpointFormat,
    PhaseReport,
    Progress,
    RunContext,
    run_epochs,
)

__all__ = ["ClassifierConfig", "ClassifierResult", "train_classifier", "CLASSIFIER_HISTORY_KEYS"]

CHECKPOINT_FORMAT = "colourmodels.classifier.checkpoint"
CHECKPOINT_VERSION = 1
CLASSIFIER_HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "seconds",
)
RESUMABLE_CHANGES = frozenset({"epochs", "device", "num_workers", "log_every", "data_path"})
CHECKPOINT = CheckpointFormat(
    CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "classifier training checkpoint", RESUMABLE_CHANGES
)


@dataclass(frozen=True)
class ClassifierConfig:
    """The classifier run: ResNet34 from scratch on one-channel luminance, SGD (lr 7.5e-4,
    momentum 0.9), cross-entropy, 100 epochs, batch 16; the kept model is the epoch with the
    best validation macro-F1. ``init_weights_path`` optionally starts from a local weights file
    (never downloaded). ``patience`` (None: off, as in the paper, which trains all ``epochs``)
    stops training once the validation accuracy has not risen above its best for that many
    epochs in a row; ``epochs`` is then the most it may train, and the kept model is still
    the best macro-F1 epoch's. ``shift`` (0: off, as in the paper) augments each training
    image with a random translation of up to that fraction of its side (reflection-padded,
    drawn from torch's global RNG, so seeded runs repeat and resume exactly): on small data
    sets, such as the demo's, it is what lets the classifier generalise beyond the images it
    has seen. Training runs float32, eager. ``data_path`` ("auto", "cpu",
    "device"): where a ``ColourisationDataset``'s images become luminance, as
    :class:`~colourmodels.training.pix2pix.Pix2PixConfig` (the luminance of the dataset's
    ``space``)."""

    num_classes: int = 6
    class_names: tuple[str, ...] | None = None
    epochs: int = 100
    batch_size: int = 16
    lr: float = 7.5e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    init_weights_path: str | None = None
    log_every: int = 50
    data_path: str = "auto"
    patience: int | None = None
    shift: float = 0.0

    def __post_init__(self) -> None:
        if self.class_names is not None:
            names = tuple(str(n) for n in self.class_names)
            object.__setattr__(self, "class_names", names)
            if len(names) != self.num_classes:
                raise ValueError(
                    f"{len(names)} class names given for num_classes={self.num_classes}"
                )
        if self.init_weights_path is not None:
            object.__setattr__(self, "init_weights_path", str(self.init_weights_path))
        for name in ("num_classes", "epochs", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not (self.lr > 0 and 0 <= self.momentum < 1 and self.weight_decay >= 0):
            raise ValueError("need lr > 0, momentum in [0, 1), weight_decay >= 0")
        if self.data_path not in DATA_PATHS:
            raise ValueError(f"data_path must be one of {DATA_PATHS}, got {self.data_path!r}")
        if self.patience is not None and int(self.patience) < 1:
            raise ValueError(f"patience must be >= 1 (or None: off), got {self.patience!r}")
        if not 0.0 <= float(self.shift) < 0.5:
            raise ValueError(
                f"shift must be a fraction of the side in [0, 0.5), got {self.shift!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names) if self.class_names is not None else None
        if d["patience"] is None:  # as written before early stopping existed: still resumable
            del d["patience"]
        if d["shift"] == 0.0:  # likewise
            del d["shift"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ClassifierConfig fields: {sorted(unknown)}")
        d = dict(d)
        if d.get("class_names") is not None:
            d["class_names"] = tuple(d["class_names"])
        return cls(**d)


@dataclass
class ClassifierResult:
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_macro_f1: float | None
    #: Confusion matrix (rows true, columns predicted) of the best epoch's model on ``val_set``.
    confusion: np.ndarray | None
    class_names: tuple[str, ...] | None
    last_epoch: int
    out_dir: Path
    checkpoint_path: Path
    best_classifier_path: Path
    last_classifier_path: Path
    #: The epoch early stopping (``patience``) ended training at; None when it did not.
    stopped_epoch: int | None = None
    #: Under torchrun: ``world_size``, ``backend``, ``per_rank_batch``, each rank's
    #: ``fingerprints`` of the model at the end and ``replicas_identical``; else None.
    distributed: dict[str, Any] | None = None


def train_classifier(
    config: ClassifierConfig,
    train_set: Dataset,
    val_set: Dataset,
    out_dir: str | Path,
    *,
    on_progress: ProgressCallback | None = None,
    resume: bool = True,
) -> ClassifierResult:
    """Train the context classifier. Datasets yield ``(luma, ..., category)``: the first item
    is the (1, H, W) input, the last the integer class; or ``(rgb uint8 (3, H, W), ...,
    category)``, whose luminance in the dataset's ``space`` is computed on the device (see
    ``ClassifierConfig.data_path``).

    Per epoch: training pass, validation pass in eval mode (loss, accuracy, macro-F1, confusion
    matrix), the early-stopping check (``config.patience``: stop once the validation accuracy
    has not beaten its best for that many epochs), then ``best_classifier.pt`` (if the
    validation macro-F1 beat every earlier epoch's; ties keep the earlier epoch),
    ``last_classifier.pt`` and ``checkpoint.pt`` are written atomically, then the "epoch"
    progress event. The checkpoint holds the early-stopping state, so a resumed run stops
    where an uninterrupted one would, and one that stopped stays stopped. Checkpoint, resume
    and cancellation rules are those of :func:`~colourmodels.training.pix2pix.train_pix2pix`.

    Under ``torchrun`` the model trains data-parallel as the Pix2Pix networks do (see
    :func:`~colourmodels.training.pix2pix.train_pix2pix`: ``config.batch_size`` is the global
    batch, synchronised BatchNorm, ``DistributedDataParallel``; the validation loss and
    confusion matrix are added over the ranks; rank 0 alone writes files and reports).
    """
    trained, task = run_epochs(
        config,
        train_set,
        val_set,
        out_dir,
        checkpoint=CHECKPOINT,
        build=lambda context: _ClassifierTask(config, context, train_set, val_set),
        on_progress=on_progress,
        resume=resume,
        drop_last_train=True,
    )
    return ClassifierResult(
        **trained.result_fields(),
        best_epoch=task.best_epoch,
        best_macro_f1=task.best_f1 if task.best_epoch is not None else None,
        confusion=task.best_confusion,
        class_names=config.class_names,
        best_classifier_path=task.best_path,
        last_classifier_path=task.last_path,
        stopped_epoch=task.stopped_epoch,
    )


class _ClassifierTask:
    """The classifier's part of the loop (:class:`~colourmodels.training.loop.EpochTask`):
    the ResNet34 and its SGD, the best macro-F1 and its confusion matrix, early stopping on
    the validation accuracy, the model files."""

    def __init__(
        self, config: ClassifierConfig, context: RunContext, train_set: Dataset, val_set: Dataset
    ) -> None:
        self.config = config
        self.ddp = context.ddp
        self.device = device = context.device
        self.best_path = context.out_dir / "best_classifier.pt"
        self.last_path = context.out_dir / "last_classifier.pt"
        self.train_space = getattr(train_set, "space", None)
        self.val_space = getattr(val_set, "space", None)
        model = build_classifier(config.num_classes, config.init_weights_path)
        state = context.state
        if state is not None:
            model.load_state_dict(state["model"])
        self.train_model: torch.nn.Module = model
        if self.ddp is not None:
            model = distributed.convert_sync_batchnorm(model, device)
            model.to(device)
            self.train_model = distributed.wrap_ddp(model, device)
        else:
            model.to(device)
        self.model = model
        self.optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.best_epoch: int | None = None
        self.best_f1 = -math.inf
        self.best_confusion: np.ndarray | None = None
        self.confusion = np.zeros((config.num_classes,) * 2, dtype=np.int64)  # the last epoch's
        # Early stopping: the best validation accuracy so far, its epoch, and where it fired.
        self.best_accuracy = -math.inf
        self.best_accuracy_epoch: int | None = None
        self.stopped_epoch: int | None = None
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.best_epoch, self.best_f1 = state["best_epoch"], float(state["best_macro_f1"])
            if state["best_confusion"] is not None:
                self.best_confusion = np.asarray(state["best_confusion"], dtype=np.int64)
            self.best_accuracy = float(state.get("best_accuracy", -math.inf))
            self.best_accuracy_epoch = state.get("best_accuracy_epoch")
            self.stopped_epoch = state.get("stopped_epoch")

    @property
    def finished(self) -> bool:
        return self.stopped_epoch is not None

    def run_epoch(
        self, epoch: int, train: Any, val: Any, progress: Progress
    ) -> tuple[dict[str, Any], bool]:
        train_loss, train_acc = _train_epoch(
            self.train_model,
            self.optimizer,
            train,
            self.train_space,
            self.device,
            progress.phase("train", epoch, train),
            self.ddp,
            shift=self.config.shift,
        )
        val_loss, confusion = _validate(
            self.model,
            val,
            self.val_space,
            self.device,
            self.config.num_classes,
            progress.phase("val", epoch, val),
            self.ddp,
        )
        f1 = macro_f1(confusion)
        self.confusion = confusion
        if f1 > self.best_f1:  # NaN never wins
            self.best_epoch, self.best_f1, self.best_confusion = epoch, f1, confusion
        val_accuracy = accuracy(confusion)
        if val_accuracy > self.best_accuracy:
            self.best_accuracy, self.best_accuracy_epoch = val_accuracy, epoch
        patience = self.config.patience
        stop = (
            patience is not None
            and self.best_accuracy_epoch is not None
            and epoch - self.best_accuracy_epoch >= patience
        )
        if stop:
            self.stopped_epoch = epoch
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "val_macro_f1": f1,
        }
        return record, stop

    def save(self, epoch: int, record: dict[str, Any]) -> None:
        extra = {"val_macro_f1": record["val_macro_f1"], "confusion": self.confusion.tolist()}
        paths = [self.best_path, self.last_path] if self.best_epoch == epoch else [self.last_path]
        for path in paths:
            save_classifier(
                self.model,
                path,
                num_classes=self.config.num_classes,
                class_names=self.config.class_names,
                epoch=epoch,
                extra_meta=extra,
            )

    def state_dict(self) -> dict[str, Any]:
        best = self.best_confusion
        return {
            "model": cpu_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "best_epoch": self.best_epoch,
            "best_macro_f1": self.best_f1,
            "best_confusion": best.tolist() if best is not None else None,
            "best_accuracy": self.best_accuracy,
            "best_accuracy_epoch": self.best_accuracy_epoch,
            "stopped_epoch": self.stopped_epoch,
        }

    def modules(self) -> tuple[torch.nn.Module, ...]:
        return (self.model,)


def _batch(
    batch: Any, space: Any, model: torch.nn.Module, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input in the model's dtype, class) on ``device``: uint8 RGB batches become luminance
    there first."""
    luma, _ = batch_luma_chroma(batch, space, device)
    dtype = next(model.parameters()).dtype
    x = luma.to(device=device, dtype=dtype, non_blocking=True)
    y = torch.as_tensor(batch[-1]).to(device=device, dtype=torch.long, non_blocking=True)
    return x, y


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Any,
    space: Any,
    device: torch.device,
    report: PhaseReport,
    ddp: distributed.Distributed | None = None,
    *,
    shift: float = 0.0,
) -> tuple[float, float]:
    model.train()
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss·n, correct
    count = 0
    for i, batch in enumerate(loader, start=1):
        x, y = _batch(batch, space, model, device)
        if shift > 0:
            x = random_shift(x, shift)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = int(y.shape[0])
        with torch.no_grad():
            sums[0] += loss.detach() * n
            sums[1] += (logits.argmax(dim=1) == y).sum()
        count += n
        report.step(i, ("train_loss", "train_accuracy"), sums, count)
    if ddp is not None:  # over all ranks' samples
        sums, count = ddp.total_counted(sums, count)
    loss_mean, acc = (sums / count).tolist()
    return loss_mean, acc


def random_shift(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Each image of ``x`` (N, C, H, W) translated by a random whole number of pixels, up to
    ``fraction`` of its side in each direction, the border filled by reflection; the offsets
    come from torch's global RNG (on the CPU, whatever the device)."""
    n, _, h, w = x.shape
    pad_h, pad_w = int(fraction * h), int(fraction * w)
    if pad_h == 0 and pad_w == 0:
        return x
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    dy = torch.randint(0, 2 * pad_h + 1, (n,)).tolist()
    dx = torch.randint(0, 2 * pad_w + 1, (n,)).tolist()
    return torch.stack([padded[k, :, dy[k] : dy[k] + h, dx[k] : dx[k] + w] for k in range(n)])


@torch.no_grad()
def _validate(
    model: torch.nn.Module,
    loader: Any,
    space: Any,
    device: torch.device,
    num_classes: int,
    report: PhaseReport,
    ddp: distributed.Distributed | None = None,
) -> tuple[float, np.ndarray]:
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    preds: list[torch.Tensor] = []
    truths: list[torch.Tensor] = []
    for i, batch in enumerate(loader, start=1):
        x, y = _batch(batch, space, model, device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        preds.append(logits.argmax(dim=1))
        truths.append(y)
        report.step(i)
    if ddp is None:
        y_pred = torch.cat(preds).cpu().numpy()
        y_true = torch.cat(truths).cpu().numpy()
        confusion = confusion_matrix(y_true, y_pred, num_classes)
        return float(loss_sum.item() / len(y_true)), confusion
    # Under torchrun: this rank's confusion matrix and loss sum, added over the ranks (a
    # rank may have no validation sample).
    empty = np.zeros(0, dtype=np.int64)
    y_pred = torch.cat(preds).cpu().numpy() if preds else empty
    y_true = torch.cat(truths).cpu().numpy() if truths else empty
    local = confusion_matrix(y_true, y_pred, num_classes)
    packed = torch.cat(
        [torch.as_tensor(local, dtype=torch.float64).flatten(), loss_sum.reshape(1).cpu()]
    )
    total = ddp.total(packed)
    confusion = total[:-1].round().to(torch.int64).reshape(local.shape).numpy()
    return float(total[-1].item() / confusion.sum()), confusion
