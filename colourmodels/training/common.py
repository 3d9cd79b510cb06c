"""Pieces shared by the trainers: devices, seeding, RNG state, data loaders, progress events,
checkpoint compatibility."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    get_worker_info,
)

from colourmodels.colour import ColourSpace
from colourmodels.training.distributed import ShardSampler, rank_epoch_seed

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
    "epoch_loader_kwargs",
    "check_resume_config",
    "DATA_PATHS",
    "resolve_data_path",
    "dataset_for_path",
    "batch_luma_chroma",
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

    Takes the keyword arguments of :func:`colourmodels.data.dataset.loader_kwargs`
    (``num_workers``, ``pin_memory``, ``persistent_workers``, ``prefetch_factor``; the last
    two are ignored without workers). ``prefetch_factor`` changes nothing but timing.
    ``persistent_workers=True`` keeps the worker processes between epochs; to keep the
    guarantee above, each worker then re-seeds ``random``, ``torch`` and ``numpy`` at its
    first item of every epoch exactly as a freshly started DataLoader worker seeds them
    (``base_seed + worker_id``, the base seed drawn from the epoch's generator as the
    DataLoader draws it), so persistent and per-epoch workers give the same batches.

    ``shard`` (distributed training): a
    :class:`~colourmodels.training.distributed.ShardSampler` that picks this rank's samples
    (it replaces ``shuffle`` and ``drop_last``); the epoch's generator then only seeds the
    workers, from (seed, epoch, rank), so the ranks draw different augmentations.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        drop_last: bool = False,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        shard: ShardSampler | None = None,
    ) -> None:
        self.seed = seed
        self.generator = torch.Generator()
        self.shard = shard
        extra: dict[str, Any] = {}
        if num_workers > 0 and prefetch_factor is not None:
            extra["prefetch_factor"] = int(prefetch_factor)
        self.persistent = bool(persistent_workers) and num_workers > 0
        self._sampler: _EpochTaggedSampler | None = None
        if shard is not None:
            # The shard sampler orders the data (and drops or fills up the last batch);
            # self.generator only seeds the workers, per rank.
            drop_last = False
        if self.persistent:
            base: Sampler[int]
            if shard is not None:
                base = shard
            elif shuffle:
                base = RandomSampler(dataset, generator=self.generator)
            else:
                base = SequentialSampler(dataset)
            self._sampler = _EpochTaggedSampler(base)
            # The loader's own generator only seeds the workers at start-up (re-seeded by
            # _EpochReseeded at each epoch); self.generator drives the order alone.
            extra["generator"] = torch.Generator().manual_seed(int(seed))
            extra["sampler"] = self._sampler
            extra["persistent_workers"] = True
            dataset = _EpochReseeded(dataset)
        elif shard is not None:
            extra["sampler"] = shard
            extra["generator"] = self.generator
        else:
            extra["shuffle"] = shuffle
            extra["generator"] = self.generator
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            drop_last=drop_last,
            **extra,
        )

    def __call__(self, epoch: int) -> DataLoader:
        if self.shard is not None:
            self.shard.set_epoch(epoch)
            self.generator.manual_seed(rank_epoch_seed(self.seed, epoch, self.shard.rank))
        else:
            self.generator.manual_seed(epoch_seed(self.seed, epoch))
        if self._sampler is not None:
            # What a fresh DataLoader iterator draws first (its workers' base seed), before
            # the sampler's permutation uses the generator.
            self._sampler.base_seed = (
                torch.empty((), dtype=torch.int64).random_(generator=self.generator).item()
            )
        return self.loader

    def __len__(self) -> int:
        return len(self.loader)


def epoch_loader_kwargs(device: torch.device, num_workers: int) -> dict[str, Any]:
    """The trainers' :class:`EpochLoader` options: those of
    :func:`colourmodels.data.dataset.loader_kwargs` for ``device`` with ``num_workers``
    (pinned memory on CUDA; persistent workers and ``prefetch_factor=4`` with workers)."""
    from colourmodels.data.dataset import loader_kwargs

    return loader_kwargs(device, num_workers=num_workers)


def train_and_val_loaders(
    train_set: Dataset,
    val_set: Dataset,
    *,
    data_path: str,
    device: torch.device,
    batch_size: int,
    seed: int,
    num_workers: int,
    drop_last_train: bool = False,
    shard: tuple[int, int] | None = None,
) -> tuple[EpochLoader, EpochLoader]:
    """The trainers' loaders: training shuffled per epoch from ``seed``, validation in
    order, both on the data path ``data_path`` resolves to for ``device``.
    ``drop_last_train`` leaves out a last, smaller training batch (when there is more than
    one batch): a batch of one or two images wrecks BatchNorm's running statistics.

    ``shard=(rank, world_size)`` (distributed training): ``batch_size`` is then this rank's
    share of the global batch, and each loader yields this rank's part of the data
    (:class:`~colourmodels.training.distributed.ShardSampler`: training in the global
    batches of the single-process order, validation split without repetition)."""
    path = resolve_data_path(data_path, device)
    kwargs = epoch_loader_kwargs(device, num_workers)
    train_shard = val_shard = None
    if shard is not None:
        rank, world = shard
        common = {"batch_size": batch_size, "rank": rank, "world_size": world, "seed": seed}
        train_shard = ShardSampler(
            len(train_set), shuffle=True, even=True, drop_last=drop_last_train, **common
        )
        val_shard = ShardSampler(len(val_set), shuffle=False, even=False, **common)
    train_loader = EpochLoader(
        dataset_for_path(train_set, path),
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        drop_last=drop_last_train and len(train_set) > batch_size,
        shard=train_shard,
        **kwargs,
    )
    val_loader = EpochLoader(
        dataset_for_path(val_set, path),
        batch_size=batch_size,
        shuffle=False,
        seed=seed,
        shard=val_shard,
        **kwargs,
    )
    return train_loader, val_loader


class _EpochTaggedSampler(Sampler):
    """Yields ``((pass, base_seed), index)``: each pass over the data is numbered, and the
    pass's worker base seed travels with each index."""

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.base_seed = 0
        self._passes = 0

    def __iter__(self):
        self._passes += 1
        tag = (self._passes, self.base_seed)
        for index in self.sampler:
            yield tag, index

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]


def _seed_worker(base_seed: int, worker_id: int) -> None:
    """Seed this process's RNGs as torch's ``_worker_loop`` seeds a new worker."""
    seed = base_seed + worker_id
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        from torch.utils.data._utils.worker import _generate_state
    except ImportError:  # pragma: no cover - torch internals moved
        state = np.random.SeedSequence([base_seed & (2**64 - 1), worker_id]).generate_state(4)
        np.random.seed(state)
    else:
        np.random.seed(_generate_state(base_seed, worker_id))


class _EpochReseeded(Dataset):
    """Wraps a map-style dataset for persistent workers: items are ``((pass, base_seed),
    index)``; a worker re-seeds its RNGs when the tag changes (its first item of a pass).
    In the main process (no workers) nothing is re-seeded."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._tag: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[tuple[int, int], int]) -> Any:
        tag, index = key
        if tag != self._tag:
            info = get_worker_info()
            if info is not None:
                _seed_worker(tag[1], info.id)
            self._tag = tag
        return self.dataset[index]


#: ``data_path`` values of the trainer configurations.
DATA_PATHS = ("auto", "cpu", "device")


def resolve_data_path(data_path: str, device: torch.device) -> str:
    """ "auto" -> "device" on CUDA, "cpu" elsewhere; "cpu" and "device" as they are.

    "cpu": the dataset converts each image to (luma, chroma) in its loader workers.
    "device": datasets that can (``with_output``, i.e. ``ColourisationDataset``) yield uint8
    RGB and :func:`batch_luma_chroma` converts each batch on the training device."""
    if data_path not in DATA_PATHS:
        raise ValueError(f"data_path must be one of {DATA_PATHS}, got {data_path!r}")
    if data_path == "auto":
        return "device" if torch.device(device).type == "cuda" else "cpu"
    return data_path


def dataset_for_path(dataset: Dataset, path: str) -> Dataset:
    """``dataset`` switched to the output of ``path`` ("cpu": luma/chroma, "device": uint8
    RGB) if it has ``with_output``; any other dataset is used as it is."""
    switch = getattr(dataset, "with_output", None)
    if switch is None:
        return dataset
    return switch("rgb8" if path == "device" else "luma_chroma")


def batch_luma_chroma(
    batch: Any, space: ColourSpace | str | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(luma, chroma)`` of a loader batch: a uint8 first item is an RGB batch, converted
    on ``device`` (:func:`colourmodels.data.device.batch_to_luma_chroma`) in ``space``;
    otherwise the first two items, as they are (the caller moves them)."""
    first = batch[0]
    if isinstance(first, torch.Tensor) and first.dtype == torch.uint8:
        if space is None:
            raise ValueError(
                "the dataset yields uint8 RGB batches but has no colour space (.space)"
            )
        from colourmodels.data.device import batch_to_luma_chroma

        return batch_to_luma_chroma(first, space, device)
    return first, batch[1]


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
