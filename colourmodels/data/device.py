"""Colour conversion of whole uint8 batches on the training device.

``ColourisationDataset(..., output="rgb8")`` stops after decode, resize, crop and flip and
yields ``(rgb uint8 (3, S, S), category)``; the DataLoader stacks (and, for CUDA, pins)
those 3-byte pixels, and :func:`batch_to_luma_chroma` moves the batch to the device and
converts it there with :func:`colourmodels.colour.rgb_to_luma_chroma`, the same function
the dataset's default output uses. The CPU workers are then left with decoding and
resizing only, and a quarter of the bytes cross the bus.

On the CPU, :func:`batch_to_luma_chroma` converts image by image in the memory layout the
dataset's own conversion uses (the decoded ``(S, S, 3)`` array seen as ``(3, S, S)``), so
its numbers are bit-identical to the dataset's ``(luma, chroma)`` items (for the same
number of intra-op threads: vectorised and scalar ``pow`` can differ in the last bit,
and where a kernel switches between them depends on the layout and the thread split).
On CUDA the batch is converted in one go; its kernels round differently from the CPU's,
by a few units in the last place (below 1e-6 after normalisation). The colour matrices
are applied with a float32 matmul, so the conversion runs with TF32 switched off even if
the process enabled it (TF32 would cost about three decimal digits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..colour import ColourSpace, rgb_to_luma_chroma

__all__ = ["batch_to_luma_chroma", "rgb8_to_unit"]


def rgb8_to_unit(rgb8: torch.Tensor) -> torch.Tensor:
    """uint8 RGB -> float32 in [0, 1] (``x / 255``, as the dataset does)."""
    return rgb8.float().div_(255.0)


@contextlib.contextmanager
def _ieee_float32_matmul() -> Iterator[None]:
    """Full float32 matmuls (no TF32) inside, the process's setting restored after."""
    previous = torch.get_float32_matmul_precision()
    if previous == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _check_rgb8(rgb8: object) -> torch.Tensor:
    if not isinstance(rgb8, torch.Tensor):
        raise TypeError(f"rgb8 must be a torch.Tensor, got {type(rgb8).__name__}")
    if rgb8.dtype != torch.uint8:
        raise TypeError(f"rgb8 must be a uint8 tensor, got dtype {rgb8.dtype}")
    if rgb8.dim() != 4 or rgb8.shape[1] != 3:
        raise ValueError(f"rgb8 must be shaped (N, 3, H, W), got {tuple(rgb8.shape)}")
    return rgb8


def batch_to_luma_chroma(
    rgb8: torch.Tensor,
    space: ColourSpace | str,
    device: str | torch.device | None = None,
    *,
    non_blocking: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 RGB batch -> normalised ``(luma, chroma)`` on ``device``.

    Args:
        rgb8: uint8 tensor (N, 3, H, W), e.g. a DataLoader batch of a
            ``ColourisationDataset(..., output="rgb8")`` (pinned when the loader's
            ``pin_memory`` is on, which makes the copy asynchronous).
        space: ``"lab"`` or ``"yuv"`` (a :class:`~colourmodels.colour.ColourSpace`).
        device: where to convert; ``None`` keeps ``rgb8``'s device.
        non_blocking: passed to the host-to-device copy.

    Returns:
        ``(luma (N, 1, H, W), chroma (N, 2, H, W))``, float32, contiguous, on ``device``:
        what the dataset's default output would have given, item by item (bit-identical
        on the CPU, see the module docstring).

    Raises:
        TypeError / ValueError: if ``rgb8`` is not a uint8 (N, 3, H, W) tensor or
        ``space`` is unknown.

    Examples:
        >>> rgb8 = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
        >>> luma, chroma = batch_to_luma_chroma(rgb8, "yuv", "cpu")
        >>> round(luma.item(), 6), [round(v, 4) for v in chroma.flatten().tolist()]
        (-0.402, [-0.3375, 1.0])
    """
    _check_rgb8(rgb8)
    target = rgb8.device if device is None else torch.device(device)
    x = rgb8.to(target, non_blocking=non_blocking)
    if target.type != "cpu" or x.shape[0] == 0:
        with _ieee_float32_matmul():
            luma, chroma = rgb_to_luma_chroma(rgb8_to_unit(x), space)
        return luma.contiguous(), chroma.contiguous()
    lumas, chromas = [], []
    for image in x:
        # The dataset's layout: the (H, W, 3) array seen as (3, H, W), float, batch of one.
        hwc = image.permute(1, 2, 0).contiguous().permute(2, 0, 1)
        luma, chroma = rgb_to_luma_chroma(rgb8_to_unit(hwc).unsqueeze(0), space)
        lumas.append(luma[0].to(torch.float32).contiguous())
        chromas.append(chroma[0].to(torch.float32).contiguous())
    return torch.stack(lumas), torch.stack(chromas)
