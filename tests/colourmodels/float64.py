"""Training in float64, for tests that check an identity of the arithmetic (the distributed
step is the single-process step) to float64 rounding rather than to float32's, which the
CPU's vector width, the BLAS kernels and the summation order decide in the last bits and
Adam then amplifies (see tests/colourmodels/test_distributed.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def float64_training() -> Iterator[None]:
    """Networks built inside the block are float64 (the default dtype); the trainers cast
    their batches to their networks' dtype. The default dtype is restored on exit."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
