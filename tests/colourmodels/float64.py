"""Training in float64, for tests that check an identity of the arithmetic (the distributed
step is the single-process step) to float64 rounding rather than to float32's, which the
CPU's vector width, the BLAS kernels and the summation order decide in the last bits and
Adam then amplifies (see tests/colourmodels/test_distributed.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _inputs_to_float64(module: torch.nn.Module, args: tuple) -> tuple:
    return tuple(a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


@contextlib.contextmanager
def float64_training() -> Iterator[None]:
    """Networks built inside the block are float64 (the default dtype); the Pix2Pix step
    casts its batches to its networks' dtype, and the classifier, whose trainer casts its
    input to float32, gets it back in float64 (a forward pre-hook: float32 data are exact in
    float64). Everything is restored on exit."""
    import colourmodels.training.classifier as classifier

    build = classifier.build_classifier

    def build_float64(*args, **kwargs):
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(_inputs_to_float64)
        return model

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    classifier.build_classifier = build_float64
    try:
        yield
    finally:
        classifier.build_classifier = build
        torch.set_default_dtype(previous)
