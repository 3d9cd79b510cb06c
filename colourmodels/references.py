"""Reference predictors: what a colouriser must beat to have learned anything.

* **No colour** (:func:`no_colour_chroma`): the grayscale input itself, i.e. the true
  luminance with zero chroma (LAB: a = b = 0; YUV: U = V = 0). Its RGB image is the input's
  gray; every metric of method.md §6 is computed on it exactly as on a model's output.
* **Per-category mean chroma** (:class:`CategoryChromaMeans`): for each category, the mean
  normalised chroma of that category's *training* images, one global (a, b) or (U, V) pair a
  category (not a per-pixel map), painted over every test image of the category. The mean is
  over images of each image's mean chroma (every image weighs the same; for images of one
  size it is the mean over all their pixels). A test image without a category, or of a
  category with no training image, gets the mean over all training images.

Both work on normalised chroma (method.md §2), whose normalisation is linear, so a mean of
normalised chroma is the normalised mean.

:func:`far_less_colourful` says when a colouriser's images are far less colourful than the
ground truth (mean colourfulness below :data:`COLOURFULNESS_FLOOR` of the truth's), the
other face of having learned little beyond grey.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from colourmodels.colour import check_image_batch

# Torch-free (the site's web process and the worker's parent read them): in evaluation.
from colourmodels.evaluation import COLOURFULNESS_FLOOR, far_less_colourful

__all__ = ["COLOURFULNESS_FLOOR", "CategoryChromaMeans", "far_less_colourful", "no_colour_chroma"]


def no_colour_chroma(chroma: torch.Tensor) -> torch.Tensor:
    """Zero chroma shaped like ``chroma`` (N, 2, H, W): "predicting no colour at all"."""
    chroma = check_image_batch(chroma, 2, "chroma")
    return torch.zeros_like(chroma)


class CategoryChromaMeans:
    """Accumulates the mean normalised chroma of training images per category (indices
    ``0 .. len(categories) - 1``; -1 for an image without one), then predicts it."""

    def __init__(self, categories: Sequence[str]) -> None:
        self.categories = list(categories)
        size = len(self.categories)
        self._sums = torch.zeros(size, 2, dtype=torch.float64)
        self._counts = torch.zeros(size, dtype=torch.int64)
        self._all_sum = torch.zeros(2, dtype=torch.float64)
        self._all_count = 0

    def add(self, chroma: torch.Tensor, categories: torch.Tensor | Sequence[int]) -> None:
        """Add a batch of training images' normalised chroma (N, 2, H, W) and their category
        indices (-1: none; counted in the overall mean only)."""
        chroma = check_image_batch(chroma, 2, "chroma")
        index = torch.as_tensor(categories, dtype=torch.int64).cpu().reshape(-1)
        if index.numel() != chroma.shape[0]:
            raise ValueError(
                f"{index.numel()} categories given for a batch of {chroma.shape[0]} images"
            )
        if ((index < -1) | (index >= len(self.categories))).any():
            raise ValueError(f"category indices must lie in -1 .. {len(self.categories) - 1}")
        per_image = chroma.detach().to(torch.float64).mean(dim=(2, 3)).cpu()  # (N, 2)
        self._all_sum += per_image.sum(dim=0)
        self._all_count += int(per_image.shape[0])
        known = index >= 0
        self._sums.index_add_(0, index[known], per_image[known])
        self._counts += torch.bincount(index[known], minlength=len(self.categories))

    def state(self) -> dict:
        """Everything it has accumulated, JSON-ready (float64 sums as Python floats, which
        JSON keeps exactly): :meth:`from_state` gives back an equal accumulator."""
        return {
            "categories": list(self.categories),
            "sums": self._sums.tolist(),
            "counts": self._counts.tolist(),
            "all_sum": self._all_sum.tolist(),
            "all_count": self._all_count,
        }

    @classmethod
    def from_state(cls, state: dict) -> CategoryChromaMeans:
        """The accumulator whose :meth:`state` was ``state``."""
        means = cls(state["categories"])
        size = len(means.categories)
        sums = torch.tensor(state["sums"], dtype=torch.float64).reshape(size, 2)
        counts = torch.tensor(state["counts"], dtype=torch.int64).reshape(size)
        all_sum = torch.tensor(state["all_sum"], dtype=torch.float64).reshape(2)
        means._sums, means._counts, means._all_sum = sums, counts, all_sum
        means._all_count = int(state["all_count"])
        return means

    @property
    def images(self) -> int:
        """How many training images were added."""
        return self._all_count

    def counts(self) -> dict[str, int]:
        """Training images per category."""
        return {name: int(n) for name, n in zip(self.categories, self._counts, strict=True)}

    def overall(self) -> torch.Tensor:
        """The mean chroma (2,) over all training images."""
        if self._all_count == 0:
            raise ValueError("no training image was added")
        return self._all_sum / self._all_count

    def means(self) -> torch.Tensor:
        """(len(categories) + 1, 2) float64: each category's mean chroma (the overall mean
        for a category without training images), then the overall mean (row -1)."""
        overall = self.overall()
        rows = torch.where(
            self._counts[:, None] > 0,
            self._sums / self._counts.clamp(min=1)[:, None],
            overall,
        )
        return torch.cat([rows, overall[None]])

    def as_dict(self) -> dict[str, list[float]]:
        """Each category's mean (normalised) chroma, JSON-ready; "" for the overall mean."""
        means = self.means().tolist()
        return {name: means[i] for i, name in enumerate(self.categories)} | {"": means[-1]}

    def predict(self, categories: torch.Tensor | Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """The predicted chroma for images of the given category indices, shaped, typed and
        placed like ``like`` (N, 2, H, W)."""
        like = check_image_batch(like, 2, "like")
        index = torch.as_tensor(categories, dtype=torch.int64).cpu().reshape(-1)
        if index.numel() != like.shape[0]:
            raise ValueError(f"{index.numel()} categories given for {like.shape[0]} images")
        table = self.means()
        index = torch.where((index >= 0) & (index < len(self.categories)), index, -1)
        chosen = table[index].to(device=like.device, dtype=like.dtype)  # (N, 2)
        return chosen[:, :, None, None].expand_as(like).contiguous()
