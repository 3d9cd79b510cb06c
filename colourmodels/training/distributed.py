"""Training one model on several processes (GPUs, machines) with ``torchrun``.

Started by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``, with
``WORLD_SIZE > 1``), the trainers run data-parallel (``DistributedDataParallel``); without
those variables (or with ``WORLD_SIZE=1``) nothing here is used and training is exactly the
single-process training. What the trainers do under ``torchrun``:

* :func:`setup` starts the process group (NCCL on CUDA, Gloo on the CPU) and puts each
  process on ``cuda:LOCAL_RANK`` when CUDA is available (a ``device`` of "auto" or any
  "cuda…"; "cpu" keeps the processes on the CPU, with Gloo).
* The **batch size of the configuration is the global batch**, the one each optimiser step
  sees (the paper's 16); each of the ``W`` processes takes ``batch_size / W`` samples of it
  (the batch size must divide by ``W``). BatchNorm layers become synchronised BatchNorm
  (:func:`convert_sync_batchnorm`), so the statistics are those of the whole global batch,
  and DDP averages the gradients: a step on ``W`` processes is the step one process would
  take on the whole batch (up to float rounding).
* :class:`ShardSampler` deals the training data out so that global batch ``k`` of an epoch
  holds exactly the samples of batch ``k`` of the single-process run with the same seed
  (the same permutation, a pure function of (seed, epoch)); a last, smaller global batch is
  filled up to a multiple of ``W`` by wrapping around to the epoch's first samples, so
  every process takes the same number of steps. Validation is split without repetition
  and the loss sums are added across processes, so every process computes the same epoch
  losses and early stopping decides the same everywhere.
* Random augmentations (the left-right flip) and dropout draw from each process's own
  generators, re-seeded at the start of every epoch from (seed, epoch, rank)
  (:meth:`Distributed.reseed`): a resumed run continues exactly as an uninterrupted one with
  the same number of processes. (So with flips or dropout the run is not the single-process
  run draw for draw, only in distribution.)
* Only rank 0 writes files (checkpoints, generator files, the command line's JSON) and
  reports progress. Rank 0 reads the checkpoint to resume from and sends it to the others
  (:meth:`Distributed.share`), so every process loads the same state, also when the output
  folder is not on a shared file system. The data must be readable at the same path on
  every machine.
* The Pix2Pix step's ``cuda_graph`` and ``compile`` performance options are not used (see
  :class:`~colourmodels.training.step.Pix2PixStep`).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

__all__ = [
    "Distributed",
    "ShardSampler",
    "convert_sync_batchnorm",
    "env_world_size",
    "is_main_process",
    "per_rank_batch",
    "rank_epoch_seed",
    "setup",
    "state_fingerprint",
    "wrap_ddp",
]

T = TypeVar("T")


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when absent or unreadable)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise RuntimeError(
            f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} is set but {name} is not: start "
            "distributed training with torchrun (python -m torch.distributed.run)"
        )
    return int(value)


def is_main_process() -> bool:
    """True in a single process and on rank 0 (from the process group, else ``RANK``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


@dataclass
class Distributed:
    """This process's place in a ``torchrun`` job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str
    #: True when :func:`setup` started the process group (then :meth:`close` ends it).
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}

    # ------------------------------------------------------------------ collectives

    def share(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and return its result on every rank. An exception on
        rank 0 is raised on every rank (the same exception when it pickles, else a
        RuntimeError naming it), marked with the attribute ``shared = True`` (the command line
        prints such errors on rank 0 only), so all processes fail alike instead of waiting."""
        payload: list[Any] = [None]
        if self.is_main:
            try:
                payload[0] = ("ok", fn())
            except Exception as exc:  # noqa: BLE001 - re-raised on every rank
                try:
                    pickle.loads(pickle.dumps(exc))  # it must also rebuild on the others
                    payload[0] = ("error", exc)
                except Exception:  # noqa: BLE001
                    payload[0] = ("error", RuntimeError(f"{type(exc).__name__}: {exc}"))
        dist.broadcast_object_list(payload, src=0, device=self._object_device())
        kind, value = payload[0]
        if kind == "error":
            value.shared = True
            raise value
        return value

    def total(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over all ranks, bit-identical on every rank (an all-reduce,
        then rank 0's result is broadcast: decisions taken on it agree everywhere)."""
        out = tensor.detach().clone().to(self._collective_device())
        dist.all_reduce(out)
        dist.broadcast(out, src=0)
        return out.to(tensor.device)

    def total_counted(self, sums: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """Per-sample sums and their sample count, each added over all ranks (one
        collective, as :meth:`total`)."""
        total = self.total(torch.cat([sums, sums.new_tensor([float(count)])]))
        return total[:-1], int(round(float(total[-1].item())))

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def reseed(self, seed: int, epoch: int) -> None:
        """Seed Python's, NumPy's and torch's global generators from (seed, epoch, rank)."""
        s = rank_epoch_seed(seed, epoch, self.rank)
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)

    def close(self, *, together: bool = False) -> None:
        """End the process group if :func:`setup` started it. ``together``: first wait until
        every rank is here (a normal end). Rank 0 writes the results while the others are
        done: a rank that tore its connections down meanwhile could abort rank 0's Gloo at
        its own teardown (seen once in CI: "terminate called without an active exception").
        After an error the ranks may not all come here, so there is no waiting then."""
        if self.owns_group and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()
            self.owns_group = False

    def _collective_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    def _object_device(self) -> torch.device | None:
        return self.device if self.backend == "nccl" else None


class Session:
    """:func:`setup` at construction (its errors surface there), the process group closed
    when the ``with`` block ends; the block gets the :class:`Distributed` or ``None``."""

    def __init__(self, device: str | torch.device = "auto") -> None:
        self.ddp = setup(device)

    def __enter__(self) -> Distributed | None:
        return self.ddp

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if self.ddp is not None:
            self.ddp.close(together=exc_type is None)


def setup(device: str | torch.device = "auto") -> Distributed | None:
    """``None`` outside ``torchrun`` (``WORLD_SIZE`` absent or 1). Under it: start the process
    group unless one is running (NCCL when this process trains on CUDA, else Gloo; the
    rendezvous comes from torchrun's ``MASTER_ADDR``/``MASTER_PORT``), select
    ``cuda:LOCAL_RANK``, and describe this process.

    ``device``: "auto" (CUDA if available, else the CPU), "cuda" or "cuda:N" (always
    ``cuda:LOCAL_RANK``: each process takes its own GPU), or "cpu"."""
    world = env_world_size()
    if world <= 1:
        return None
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed")
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    request = str(device)
    if request == "auto":
        cuda = torch.cuda.is_available()
    else:
        kind = torch.device(request).type
        if kind not in ("cuda", "cpu"):
            raise ValueError(f"distributed training runs on cuda or cpu, not {request!r}")
        cuda = kind == "cuda"
        if cuda and not torch.cuda.is_available():
            raise RuntimeError(f"device {request!r} requested but CUDA is not available")
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) visible: "
                "start at most one process per GPU (torchrun --nproc_per_node)"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    owns = False
    if dist.is_initialized():
        backend = str(dist.get_backend())
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise RuntimeError("the running process group does not match WORLD_SIZE/RANK")
    else:
        backend = "nccl" if cuda else "gloo"
        # Ranks wait for rank 0 while it scans the photos or reads a checkpoint: allow
        # 30 minutes (Gloo's default; NCCL's is 10).
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
        owns = True
    return Distributed(rank, world, local_rank, local_world, dev, backend, owns)


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """The per-process share of a global batch; ``ValueError`` unless it divides evenly."""
    if batch_size % world_size:
        raise ValueError(
            f"the batch size {batch_size} is the global batch and must divide evenly among "
            f"the {world_size} processes (e.g. {world_size * max(1, batch_size // world_size)})"
        )
    return batch_size // world_size


def rank_epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A 63-bit seed for rank ``rank``'s random draws in epoch ``epoch`` (distinct from
    :func:`~colourmodels.training.common.epoch_seed`, which orders the data)."""
    sequence = np.random.SeedSequence([int(seed), int(epoch), 0x5EED, int(rank)])
    return int(sequence.generate_state(1, np.uint64)[0]) >> 1


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of epoch ``epoch`` exactly as the single-process
    :class:`~colourmodels.training.common.EpochLoader` draws it: its generator seeded with
    ``epoch_seed(seed, epoch)``, one int64 drawn (the DataLoader's worker base seed), then
    ``randperm(n)`` (``RandomSampler``)."""
    from colourmodels.training.common import epoch_seed

    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(n, generator=generator).tolist()


class ShardSampler(Sampler[int]):
    """This rank's sample indices for one epoch (call :meth:`set_epoch` first).

    ``even=True`` (training): the epoch's order (:func:`epoch_permutation` when ``shuffle``,
    else 0..n-1) is cut into global batches of ``batch_size · world_size``; rank ``r`` takes
    the ``r``-th run of ``batch_size`` samples of each, so the ranks' batches ``k`` together
    are the single-process batch ``k``. ``drop_last`` (when there is more than one global
    batch) leaves out a last, smaller global batch; otherwise it is filled up to a multiple
    of ``world_size`` with the epoch's first samples and dealt out evenly. Every rank gets
    the same number of samples and batches.

    ``even=False`` (evaluation): rank ``r`` takes every ``world_size``-th sample from ``r``;
    each sample is seen exactly once (ranks may differ by one sample).
    """

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        rank: int,
        world_size: int,
        shuffle: bool,
        seed: int,
        even: bool = True,
        drop_last: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.even = bool(even)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        if self.shuffle:
            return epoch_permutation(self.n, self.seed, self.epoch)
        return list(range(self.n))

    def _global_batch(self) -> int:
        return self.batch_size * self.world_size

    def _sizes(self) -> tuple[int, int]:
        """(full global batches, per-rank size of the last partial one, 0 if none)."""
        g = self._global_batch()
        full, tail = divmod(self.n, g)
        if self.drop_last and full > 0:
            tail = 0
        return full, math.ceil(tail / self.world_size)

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if not self.even:
            return iter(order[self.rank :: self.world_size])
        b, g = self.batch_size, self._global_batch()
        full, per = self._sizes()
        mine: list[int] = []
        for k in range(full):
            start = k * g + self.rank * b
            mine.extend(order[start : start + b])
        if per:
            rest = order[full * g :]
            need = per * self.world_size
            while len(rest) < need:  # wrap around (more than once for tiny data sets)
                rest.extend(order[: need - len(rest)])
            mine.extend(rest[self.rank * per : (self.rank + 1) * per])
        return iter(mine)

    def __len__(self) -> int:
        if not self.even:
            return len(range(self.rank, self.n, self.world_size))
        full, per = self._sizes()
        return full * self.batch_size + per


# ---------------------------------------------------------------------- BatchNorm


class _SumAcrossRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient (the sum's adjoint)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the global batch of all ranks, for the CPU (where torch's
    ``SyncBatchNorm`` refuses to run): in training mode with a process group of more than
    one rank, the per-channel mean and (biased) variance are those of every rank's samples
    together (two all-reduces, differentiable), and the running statistics are updated with
    them as ``BatchNorm2d`` does (unbiased variance, momentum). Otherwise it is
    ``BatchNorm2d``. Its state dict is BatchNorm2d's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # float64 stays float64
        count = torch.tensor([x.numel() / c], dtype=xf.dtype, device=x.device)
        packed = _SumAcrossRanks.apply(torch.cat([xf.sum(dims), count]))
        n = packed[c].detach()
        mean = packed[:c] / n
        shape = (1, c) + (1,) * (x.dim() - 2)
        centred = xf - mean.view(shape)
        var = _SumAcrossRanks.apply((centred * centred).sum(dims)) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    factor = 1.0 / float(self.num_batches_tracked.item())
                else:
                    factor = self.momentum
                unbiased = var.detach() * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device | str) -> nn.Module:
    """Replace ``module``'s BatchNorm layers in place (the same parameter and buffer
    tensors, the same state-dict keys) by synchronised ones: ``torch.nn.SyncBatchNorm``
    on GPUs, :class:`GlobalBatchNorm2d` on the CPU. Returns ``module`` (or the replacement
    if ``module`` itself is a BatchNorm layer)."""
    if torch.device(device).type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlobalBatchNorm2d):
        new = GlobalBatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            new.weight = module.weight
            new.bias = module.bias
        new.running_mean = module.running_mean
        new.running_var = module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        replaced = convert_sync_batchnorm(child, device)
        if replaced is not child:
            module.add_module(name, replaced)
    return module


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(module)`` on ``device`` (already moved there). Rank 0's
    parameters and buffers are copied to every rank once, at construction; the buffers are
    not re-sent before each forward, since synchronised BatchNorm
    (:func:`convert_sync_batchnorm`) keeps them equal on every rank."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP

    options: dict[str, Any] = {}
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        options["forward_sync_buffers"] = False
    else:  # older torch
        options["broadcast_buffers"] = False
    if device.type == "cuda":
        options["device_ids"] = [device.index]
        options["output_device"] = device.index
    return DDP(module, **options)


def state_fingerprint(*modules: nn.Module) -> str:
    """SHA-256 of the modules' parameters and buffers (names, shapes, values): equal on two
    ranks exactly when their replicas are bit-identical."""
    digest = hashlib.sha256()
    for i, module in enumerate(modules):
        for name, tensor in module.state_dict().items():
            t = tensor.detach().to("cpu").contiguous()
            digest.update(f"{i}.{name}:{tuple(t.shape)}:{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
