"""Performance switches for training on CUDA (they change speed, not the method)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["PerformanceOptions"]


@dataclass(frozen=True)
class PerformanceOptions:
    """How the training step runs. All False ("reference") is how the original pix2pix runs:
    float32, eager, contiguous tensors, plain (non-fused) Adam.

    * ``amp_bf16``: forward passes under ``torch.autocast("cuda", dtype=torch.bfloat16)``;
      the losses (BCE on logits, L1) and the backward/optimiser maths stay in float32.
    * ``channels_last``: networks and inputs in ``torch.channels_last`` memory format.
    * ``fused_adam``: ``Adam(fused=True)``.
    * ``cudnn_benchmark``: ``torch.backends.cudnn.benchmark = True`` (a process-wide setting).
    * ``cuda_graph``: the whole training step (both forwards, backwards and Adam steps) is
      captured once into a CUDA graph and replayed; see :class:`Pix2PixStep`.
    * ``compile``: both networks' training forwards go through ``torch.compile`` (default
      mode; its kernels are captured in the same CUDA graph). Measured on an H200 at 256 px
      (bench/bench_train.py): 2.68x the reference at batch 64 against 2.07x without it, and
      2.13x against 2.07x at batch 16; it costs a compilation of a minute or so per run.

    On the CPU ``amp_bf16``, ``fused_adam``, ``cudnn_benchmark``, ``cuda_graph`` and ``compile``
    are ignored
    (the step runs float32, eager, with plain Adam); ``channels_last`` is applied on any device.
    Under ``torchrun`` (``DistributedDataParallel``, see
    :mod:`colourmodels.training.distributed`) ``cuda_graph`` and ``compile`` are ignored too
    (a warning says so); the others apply.
    """

    amp_bf16: bool = False
    channels_last: bool = False
    fused_adam: bool = False
    cudnn_benchmark: bool = False
    cuda_graph: bool = False
    compile: bool = False

    @classmethod
    def reference(cls) -> PerformanceOptions:
        return cls()

    @classmethod
    def fast(cls) -> PerformanceOptions:
        return cls(**{f.name: True for f in fields(cls)})

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PerformanceOptions:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown performance options: {sorted(unknown)}")
        return cls(**{k: bool(v) for k, v in d.items()})
