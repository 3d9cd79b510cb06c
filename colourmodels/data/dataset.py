"""The torch dataset that feeds Pix2Pix: (luminance, chroma, category index).

Resize policy (:func:`resize_square`): scale the image so that its *shorter* side is
``S`` with Pillow's bicubic filter (antialiased: when reducing, the filter's support
widens with the scale factor, so there is no aliasing), then keep the centred ``S x S``
square. It is done in one resampling step through Pillow's ``box`` argument (the
centred square of side ``min(W, H)`` in source coordinates, fractional offsets
allowed), which gives the same pixels as resize-then-crop, without resampling the
parts that are thrown away. Smaller images are enlarged the same way.

With ``train=True`` the pair is flipped left-right with probability 0.5 (torch's global
generator, which DataLoader seeds per worker); nothing else is random. The colour
conversion is :func:`colourmodels.colour.rgb_to_luma_chroma`, so luminance and chroma
are normalised to [-1, 1] as in the method's section 2.

Two outputs (``output=``): ``"luma_chroma"`` (the default) converts each item on the CPU
and yields ``(luma, chroma, category)``; ``"rgb8"`` stops after the decode, resize, crop
and flip and yields ``(rgb uint8 (3, S, S), category)``, 3 bytes a pixel instead of 12,
for :func:`colourmodels.data.device.batch_to_luma_chroma` to convert a whole batch on
the training device. Both draw the flip the same way, so the two give the same inputs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..colour import ColourSpace, rgb_to_luma_chroma
from ..cpus import usable_cpus
from .device import rgb8_to_unit
from .folders import ImageRecord
from .images import MAX_PIXELS, load_rgb, resize_square

__all__ = [
    "DATASET_OUTPUTS",
    "ColourisationDataset",
    "image_to_tensor",
    "loader_kwargs",
    "resize_square",
]


#: What :class:`ColourisationDataset` can yield (see the module docstring).
DATASET_OUTPUTS = ("luma_chroma", "rgb8")


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> float32 tensor (3, H, W) in [0, 1]."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def _as_record(item: ImageRecord | str | os.PathLike[str]) -> ImageRecord:
    if isinstance(item, ImageRecord):
        return item
    return ImageRecord(Path(item), None)


class ColourisationDataset(Dataset):
    """Images -> ``(luma (1, S, S), chroma (2, S, S), category index)``, or with
    ``output="rgb8"`` -> ``(rgb (3, S, S) uint8, category index)`` (same decode, resize,
    crop and flip; no colour conversion, see :meth:`with_output`).

    ``records_or_paths``: :class:`~colourmodels.data.folders.ImageRecord` items or plain
    paths (uncategorised). ``categories``: the category names in index order; by default
    the sorted names found in the records. An image with no category, or one not in
    ``categories``, gets index -1. ``preload=True`` decodes and resizes every image
    once, up front, and keeps the ``S x S`` 8-bit crops in memory (``3 S^2`` bytes
    each: fine for small sets or small ``S``; shared copy-on-write with forked
    DataLoader workers). Unreadable images raise
    :class:`~colourmodels.data.images.ImageError` naming the file.
    """

    def __init__(
        self,
        records_or_paths: Sequence[ImageRecord | str | os.PathLike[str]],
        space: ColourSpace | str,
        image_size: int,
        categories: Sequence[str] | None = None,
        train: bool = False,
        *,
        preload: bool = False,
        max_pixels: int = MAX_PIXELS,
        output: str = "luma_chroma",
    ) -> None:
        if output not in DATASET_OUTPUTS:
            raise ValueError(f"output must be one of {DATASET_OUTPUTS}, got {output!r}")
        self.output = output
        self.records = [_as_record(item) for item in records_or_paths]
        self.space = ColourSpace(space)
        if image_size <= 0:
            raise ValueError("image_size must be positive")
        self.image_size = int(image_size)
        if categories is None:
            categories = sorted({r.category for r in self.records if r.category is not None})
        self.categories = list(categories)
        self._index = {name: i for i, name in enumerate(self.categories)}
        self.train = bool(train)
        self.max_pixels = max_pixels
        self._cache: np.ndarray | None = None
        if preload:
            cache = np.empty((len(self.records), self.image_size, self.image_size, 3), np.uint8)
            for i in range(len(self.records)):
                cache[i] = np.asarray(self._load_square(i))
            self._cache = cache

    def __len__(self) -> int:
        return len(self.records)

    def category_index(self, i: int) -> int:
        category = self.records[i].category
        return -1 if category is None else self._index.get(category, -1)

    def _load_square(self, i: int) -> Image.Image:
        image = load_rgb(self.records[i].path, max_pixels=self.max_pixels)
        return resize_square(image, self.image_size)

    def with_output(self, output: str) -> ColourisationDataset:
        """This dataset yielding ``output`` ("luma_chroma" or "rgb8"): ``self`` if it already
        does, else a shallow copy sharing the records and the preloaded crops."""
        if output not in DATASET_OUTPUTS:
            raise ValueError(f"output must be one of {DATASET_OUTPUTS}, got {output!r}")
        if output == self.output:
            return self
        other = copy.copy(self)
        other.output = output
        return other

    def _rgb8_hwc(self, i: int) -> torch.Tensor:
        """uint8 (3, S, S) view of a fresh (S, S, 3) array: item ``i``, unflipped."""
        if self._cache is not None:
            array = self._cache[i].copy()
        else:
            image = self._load_square(i)
            if image.mode != "RGB":
                image = image.convert("RGB")
            array = np.asarray(image, dtype=np.uint8).copy()
        return torch.from_numpy(array).permute(2, 0, 1)

    def rgb(self, i: int) -> torch.Tensor:
        """Item ``i`` as the resized, cropped RGB tensor (3, S, S) in [0, 1], unflipped."""
        return rgb8_to_unit(self._rgb8_hwc(i))

    def rgb8(self, i: int) -> torch.Tensor:
        """Item ``i`` as the resized, cropped RGB tensor (3, S, S), uint8, unflipped."""
        return self._rgb8_hwc(i).contiguous()

    def __getitem__(
        self, i: int
    ) -> tuple[torch.Tensor, torch.Tensor, int] | tuple[torch.Tensor, int]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.output == "rgb8":
            rgb8 = self._rgb8_hwc(i)
            if self.train and torch.rand(()) < 0.5:  # the same draw as below
                rgb8 = rgb8.flip(-1)
            return rgb8.contiguous(), self.category_index(i)
        # The float tensor keeps the (S, S, 3) memory layout of the decoded image: the
        # rgb8 path reproduces it (colourmodels.data.device) to give bit-identical numbers.
        rgb = self.rgb(i)
        if self.train and torch.rand(()) < 0.5:
            rgb = rgb.flip(-1)
        luma, chroma = rgb_to_luma_chroma(rgb.unsqueeze(0), self.space)
        return (
            luma[0].to(torch.float32).contiguous(),
            chroma[0].to(torch.float32).contiguous(),
            self.category_index(i),
        )


def loader_kwargs(
    device: str | torch.device, *, num_workers: int | None = None, cpus: int | None = None
) -> dict[str, object]:
    """DataLoader keyword arguments suited to ``device`` and this machine.

    Workers (unless ``num_workers`` is given): for a CUDA device, ``min(8, cpus - 2)``
    (8 on a 16-core GPU machine: decoding and resizing JPEGs must keep up with the GPU,
    and two cores stay with the main process); for CPU training, 0 on machines with 1-2
    cores (the model already uses them; worker processes only add start-up and copying)
    and ``min(4, cpus // 2)`` above that. ``pin_memory`` only for CUDA;
    ``persistent_workers`` and ``prefetch_factor=4`` whenever there are workers.
    """
    device = torch.device(device)
    cpus = cpus if cpus is not None else usable_cpus()
    cuda = device.type == "cuda"
    if num_workers is None:
        num_workers = min(8, max(cpus - 2, 0)) if cuda else (0 if cpus <= 2 else min(4, cpus // 2))
    kwargs: dict[str, object] = {
        "num_workers": int(num_workers),
        "pin_memory": cuda,
    }
    if num_workers > 0:
        kwargs["persistent_workers"] = True
        kwargs["prefetch_factor"] = 4
    return kwargs
