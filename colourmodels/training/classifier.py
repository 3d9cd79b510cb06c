"""Training the ResNet34 context classifier on luminance (method.md section 5)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from colourmodels.checkpoints import (
    CheckpointError,
    atomic_save,
    cpu_state_dict,
    read_file,
    save_classifier,
)
from colourmodels.networks import build_classifier
from colourmodels.training import distributed
from colourmodels.training.classification_metrics import accuracy, confusion_matrix, macro_f1
from colourmodels.training.common import (
    DATA_PATHS,
    ProgressCallback,
    ProgressEvent,
    batch_luma_chroma,
    check_resume_config,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
    train_and_val_loaders,
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


@dataclass(frozen=True)
class ClassifierConfig:
    """The classifier run: ResNet34 from scratch on one-channel luminance, SGD (lr 7.5e-4,
    momentum 0.9), cross-entropy, 100 epochs, batch 16; the kept model is the epoch with the
    best validation macro-F1. ``init_weights_path`` optionally starts from a local weights file
    (never downloaded). Training runs float32, eager. ``data_path`` ("auto", "cpu",
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names) if self.class_names is not None else None
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
    matrix), then ``best_classifier.pt`` (if the validation macro-F1 beat every earlier epoch's;
    ties keep the earlier epoch), ``last_classifier.pt`` and ``checkpoint.pt`` are written
    atomically, then the "epoch" progress event. Checkpoint, resume and cancellation rules are
    those of :func:`~colourmodels.training.pix2pix.train_pix2pix`.

    Under ``torchrun`` the model trains data-parallel as the Pix2Pix networks do (see
    :func:`~colourmodels.training.pix2pix.train_pix2pix`: ``config.batch_size`` is the global
    batch, synchronised BatchNorm, ``DistributedDataParallel``; the validation loss and
    confusion matrix are added over the ranks; rank 0 alone writes files and reports).
    """
    with distributed.Session(config.device) as ddp:
        return _train(config, train_set, val_set, Path(out_dir), on_progress, resume, ddp)


def _train(
    config: ClassifierConfig,
    train_set: Dataset,
    val_set: Dataset,
    out_dir: Path,
    on_progress: ProgressCallback | None,
    resume: bool,
    ddp: distributed.Distributed | None,
) -> ClassifierResult:
    main = ddp is None or ddp.is_main
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    best_path = out_dir / "best_classifier.pt"
    last_path = out_dir / "last_classifier.pt"
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError("the training and validation sets must not be empty")
    if not main:
        on_progress = None
    device = ddp.device if ddp is not None else resolve_device(config.device)
    batch_size = config.batch_size
    if ddp is not None:
        batch_size = distributed.per_rank_batch(config.batch_size, ddp.world_size)

    seed_everything(config.seed)
    model = build_classifier(config.num_classes, config.init_weights_path)

    def read() -> dict[str, Any] | None:
        return _read_checkpoint(ckpt_path, config) if resume and ckpt_path.exists() else None

    state = read() if ddp is None else ddp.share(read)
    if state is not None:
        model.load_state_dict(state["model"])
    train_model: torch.nn.Module = model
    if ddp is not None:
        model = distributed.convert_sync_batchnorm(model, device)
        model.to(device)
        train_model = distributed.wrap_ddp(model, device)
    else:
        model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    history: list[dict[str, Any]] = []
    best_epoch: int | None = None
    best_f1 = -math.inf
    best_confusion: np.ndarray | None = None
    start = 1
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        best_epoch, best_f1 = state["best_epoch"], float(state["best_macro_f1"])
        if state["best_confusion"] is not None:
            best_confusion = np.asarray(state["best_confusion"], dtype=np.int64)
        start = int(state["epoch"]) + 1
        set_rng_state(state["rng"], device)

    train_loader, val_loader = train_and_val_loaders(
        train_set,
        val_set,
        data_path=config.data_path,
        device=device,
        batch_size=batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        drop_last_train=True,
        shard=(ddp.rank, ddp.world_size) if ddp is not None else None,
    )
    train_space = getattr(train_set, "space", None)
    val_space = getattr(val_set, "space", None)
    sync_every = 1 if device.type != "cuda" else config.log_every

    for epoch in range(start, config.epochs + 1):
        t0 = time.perf_counter()
        if ddp is not None:
            ddp.reseed(config.seed, epoch)
        train_loss, train_acc = _train_epoch(
            train_model,
            optimizer,
            train_loader(epoch),
            train_space,
            device,
            epoch,
            on_progress,
            sync_every,
            ddp,
        )
        val_loss, confusion = _validate(
            model,
            val_loader(epoch),
            val_space,
            device,
            config.num_classes,
            epoch,
            on_progress,
            ddp,
        )
        f1 = macro_f1(confusion)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": accuracy(confusion),
            "val_macro_f1": f1,
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        if f1 > best_f1:  # NaN never wins
            best_epoch, best_f1, best_confusion = epoch, f1, confusion
            if main:
                save_classifier(
                    model,
                    best_path,
                    num_classes=config.num_classes,
                    class_names=config.class_names,
                    epoch=epoch,
                    extra_meta={"val_macro_f1": f1, "confusion": confusion.tolist()},
                )
        start = epoch + 1
        if not main:
            continue
        save_classifier(
            model,
            last_path,
            num_classes=config.num_classes,
            class_names=config.class_names,
            epoch=epoch,
            extra_meta={"val_macro_f1": f1, "confusion": confusion.tolist()},
        )
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": config.to_dict(),
            "epoch": epoch,
            "model": cpu_state_dict(model),
            "optimizer": optimizer.state_dict(),
            "history": history,
            "best_epoch": best_epoch,
            "best_macro_f1": best_f1,
            "best_confusion": best_confusion.tolist() if best_confusion is not None else None,
            "rng": rng_state(device),
        }
        if ddp is not None:
            checkpoint["world_size"] = ddp.world_size
        atomic_save(checkpoint, ckpt_path)
        if on_progress is not None:
            numbers = {k: v for k, v in record.items() if isinstance(v, int | float)}
            on_progress(ProgressEvent("epoch", epoch, epoch, config.epochs, numbers))

    info = None
    if ddp is not None:
        prints = ddp.gather(distributed.state_fingerprint(model))
        info = {
            **ddp.describe(),
            "per_rank_batch": batch_size,
            "fingerprints": prints,
            "replicas_identical": len(set(prints)) == 1,
        }
    return ClassifierResult(
        history=history,
        best_epoch=best_epoch,
        best_macro_f1=best_f1 if best_epoch is not None else None,
        confusion=best_confusion,
        class_names=config.class_names,
        last_epoch=start - 1,
        out_dir=out_dir,
        checkpoint_path=ckpt_path,
        best_classifier_path=best_path,
        last_classifier_path=last_path,
        distributed=info,
    )


def _batch(batch: Any, space: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, class) on ``device``: uint8 RGB batches become luminance there first."""
    luma, _ = batch_luma_chroma(batch, space, device)
    x = luma.to(device=device, dtype=torch.float32, non_blocking=True)
    y = torch.as_tensor(batch[-1]).to(device=device, dtype=torch.long, non_blocking=True)
    return x, y


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Any,
    space: Any,
    device: torch.device,
    epoch: int,
    on_progress: ProgressCallback | None,
    sync_every: int,
    ddp: distributed.Distributed | None = None,
) -> tuple[float, float]:
    model.train()
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss·n, correct
    count = 0
    steps = len(loader)
    shown: dict[str, float] = {}
    for i, batch in enumerate(loader, start=1):
        x, y = _batch(batch, space, device)
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
        if on_progress is not None:
            if i % sync_every == 0 or i == steps:
                loss_mean, acc = (sums / count).tolist()
                shown = {"train_loss": loss_mean, "train_accuracy": acc}
            on_progress(ProgressEvent("train", epoch, i, steps, shown))
    if ddp is not None:  # over all ranks' samples
        total = ddp.total(torch.cat([sums, sums.new_tensor([float(count)])]))
        sums, count = total[:2], int(round(float(total[2].item())))
    loss_mean, acc = (sums / count).tolist()
    return loss_mean, acc


@torch.no_grad()
def _validate(
    model: torch.nn.Module,
    loader: Any,
    space: Any,
    device: torch.device,
    num_classes: int,
    epoch: int,
    on_progress: ProgressCallback | None,
    ddp: distributed.Distributed | None = None,
) -> tuple[float, np.ndarray]:
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    preds: list[torch.Tensor] = []
    truths: list[torch.Tensor] = []
    steps = len(loader)
    for i, batch in enumerate(loader, start=1):
        x, y = _batch(batch, space, device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        preds.append(logits.argmax(dim=1))
        truths.append(y)
        if on_progress is not None:
            on_progress(ProgressEvent("val", epoch, i, steps, {}))
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


def _read_checkpoint(path: Path, config: ClassifierConfig) -> dict[str, Any]:
    state = read_file(path, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a classifier training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint version {state.get('version')!r}")
    check_resume_config(
        state["config"], config.to_dict(), may_differ=set(RESUMABLE_CHANGES), path=path
    )
    return state
