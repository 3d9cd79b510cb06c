"""Pieces shared by the trainers: devices, seeding, RNG state, data loaders, progress events,
checkpoint compatibility."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "ProgressEvent",
    "ProgressCallback",
    "TrainingCancelled",
    "ConfigMismatchError",
    "resolve_device",
    "seed_everything",
    "epoch_seed",
    "rng_state",
    "set_rng_state",
    "EpochLoader",
    "check_resume_config",
]


class TrainingCancelled(Exception):
    """Raise from an ``on_progress`` callback to stop training. The trainers let it (and any
    other exception) propagate; the last complete epoch's checkpoint stays intact, and calling
    the trainer again with ``resume=True`` continues from it."""


class ConfigMismatchError(ValueError):
    """``resume=True`` found a checkpoint written with a different configuration."""


@dataclass(frozen=True)
class ProgressEvent:
    """What a trainer reports to ``on_progress``.

    ``phase`` is "train" (after each training step), "val" (after each validation batch) or
    "epoch" (once per epoch, after the epoch's checkpoint has been written). ``step`` counts
    from 1 to ``steps`` within the phase (for "epoch": the epoch and the maximum epochs).
    ``losses`` holds running means of the phase's losses so far, as floats; on CUDA they are
    copied to the host only every ``log_every`` steps and at the end of the phase (between
    those, the last values are repeated), so reporting never syncs the GPU every step. For
    "epoch" it is the epoch's history record (numbers only). ``stop`` is True on the "epoch"
    event of the epoch at which early stopping fired.
    """

    phase: str
    epoch: int
    step: int
    steps: int
    losses: dict[str, float] = field(default_factory=dict)
    stop: bool = False


ProgressCallback = Callable[[ProgressEvent], None]


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" → cuda if available else cpu; anything else as ``torch.device``. A CUDA device
    that is not available raises ``RuntimeError``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for epoch ``epoch``'s data order, mixed from (seed, epoch)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]) >> 1


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every global RNG state a resume needs, in plain types (loads with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            name,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "python": random.getstate(),
        "cuda": None,
    }
    if device.type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if device.type == "cuda" and cuda is not None and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class EpochLoader:
    """A DataLoader whose shuffling is a pure function of (seed, epoch).

    ``loader(epoch)`` re-seeds the loader's own ``torch.Generator`` with
    :func:`epoch_seed` and returns the loader; the sample order and the worker base seed (used
    by random augmentations in workers) then depend on nothing else, in particular not on the
    global RNG, so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        num_workers: int,
        pin_memory: bool,
        drop_last: bool = False,
    ) -> None:
        self.seed = seed
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
            pin_memory=pin_memory,
            drop_last=drop_last,
            generator=self.generator,
        )

    def __call__(self, epoch: int) -> DataLoader:
        self.generator.manual_seed(epoch_seed(self.seed, epoch))
        return self.loader

    def __len__(self) -> int:
        return len(self.loader)


def check_resume_config(
    saved: dict[str, Any], current: dict[str, Any], *, may_differ: set[str], path: Any
) -> None:
    """Raise :class:`ConfigMismatchError` listing the fields (other than ``may_differ``) whose
    values differ between a checkpoint's configuration and the current one."""
    keys = (set(saved) | set(current)) - may_differ
    diffs = [
        f"{k}: checkpoint {saved.get(k, '<absent>')!r} vs now {current.get(k, '<absent>')!r}"
        for k in sorted(keys)
        if saved.get(k, "<absent>") != current.get(k, "<absent>")
    ]
    if diffs:
        raise ConfigMismatchError(
            f"{path} was written with a different configuration ("
            + "; ".join(diffs)
            + "). Use another output folder, or resume=False to start afresh."
        )
