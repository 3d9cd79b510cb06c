"""Confusion matrix and (macro) F1 as small pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["confusion_matrix", "per_class_f1", "macro_f1", "accuracy"]


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class_f1(confusion: np.ndarray) -> list[float | None]:
    """F1 = 2·TP / (2·TP + FP + FN) per class; ``None`` for a class absent from both the truth
    and the predictions (TP + FP + FN = 0), for which F1 is undefined."""
    c = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(c)
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    out: list[float | None] = []
    for i in range(c.shape[0]):
        den = 2 * tp[i] + fp[i] + fn[i]
        out.append(None if den == 0 else float(2 * tp[i] / den))
    return out


def macro_f1(confusion: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over the classes that occur in the truth or the
    predictions (a class absent from both is excluded, not counted as 0 or 1). NaN when no
    class occurs (empty input)."""
    scores = [s for s in per_class_f1(confusion) if s is not None]
    return float(np.mean(scores)) if scores else math.nan


def accuracy(confusion: np.ndarray) -> float:
    c = np.asarray(confusion)
    total = c.sum()
    return float(np.trace(c) / total) if total else math.nan
