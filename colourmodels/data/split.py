"""Deterministic stratified train / validation / test split.

Each category (``None``, uncategorised, counts as one) is split on its own:

1. its items are put in a canonical order (by ``key``, the path by default), so the
   result does not depend on the order the caller passes them in;
2. they are shuffled with a NumPy generator seeded by ``(seed, crc32(category name))``,
   so adding a category does not reshuffle the others;
3. the counts come from the fractions by the largest-remainder rule (floors first, the
   items left over go to the largest fractional parts, ties to the earlier part), so
   they always add up and each part is as close to its fraction as whole items allow.
   With 12 images and 0.75 / 0.15 / 0.10: 9 / 2 / 1.

Within each part the items keep the canonical order.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

__all__ = ["DEFAULT_FRACTIONS", "Split", "split_counts", "stratified_split"]

T = TypeVar("T")

#: The paper's train / validation / test fractions.
DEFAULT_FRACTIONS = (0.75, 0.15, 0.10)


@dataclass(frozen=True)
class Split(Generic[T]):
    train: list[T]
    val: list[T]
    test: list[T]

    def parts(self) -> dict[str, list[T]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def split_counts(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[int]:
    """Whole-item counts for ``n`` items by the largest-remainder rule."""
    if n < 0:
        raise ValueError("n must be >= 0")
    _check_fractions(fractions)
    exact = [n * f for f in fractions]
    counts = [math.floor(x) for x in exact]
    left = n - sum(counts)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3:
        raise ValueError("fractions must be three numbers: train, validation, test")
    if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be >= 0 and add up to 1, got {tuple(fractions)}")


def _default_category(item: object) -> Hashable:
    return getattr(item, "category", None)


def _default_key(item: object) -> str:
    path = getattr(item, "path", item)
    return str(path)


def stratified_split(
    items: Sequence[T],
    *,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    category: Callable[[T], Hashable] = _default_category,
    key: Callable[[T], str] = _default_key,
) -> Split[T]:
    """Split ``items`` (e.g. :class:`~colourmodels.data.folders.ImageRecord`) into
    train / validation / test, stratified by ``category(item)`` and deterministic from
    ``seed`` (see the module docstring)."""
    _check_fractions(fractions)
    canonical = sorted(range(len(items)), key=lambda i: key(items[i]))
    groups: dict[Hashable, list[int]] = {}
    for i in canonical:
        groups.setdefault(category(items[i]), []).append(i)

    part_of = [0] * len(items)
    for name, members in groups.items():
        label = "" if name is None else str(name)
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        order = rng.permutation(len(members))
        n_train, n_val, _ = split_counts(len(members), fractions)
        for rank, position in enumerate(order):
            part = 0 if rank < n_train else 1 if rank < n_train + n_val else 2
            part_of[members[position]] = part

    parts: list[list[T]] = [[], [], []]
    for i in canonical:
        parts[part_of[i]].append(items[i])
    return Split(train=parts[0], val=parts[1], test=parts[2])
