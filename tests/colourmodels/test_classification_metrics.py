"""Confusion matrix and macro-F1 on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from colourmodels.training.classification_metrics import (
    accuracy,
    confusion_matrix,
    macro_f1,
    per_class_f1,
)


def test_confusion_matrix_rows_true_columns_predicted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.dtype == np.int64


def test_f1_by_hand():
    # From the matrix above:
    # class 0: TP 1, FP 1 (a 2 predicted 0), FN 1 -> F1 = 2/(2+1+1) = 0.5
    # class 1: TP 1, FP 1, FN 0               -> F1 = 2/(2+1)   = 2/3
    # class 2: TP 2, FP 0, FN 1               -> F1 = 4/(4+1)   = 0.8
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert per_class_f1(cm) == pytest.approx([0.5, 2 / 3, 0.8])
    assert macro_f1(cm) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert accuracy(cm) == pytest.approx(4 / 6)


def test_class_absent_from_truth_and_prediction_is_excluded():
    # Class 3 never occurs: excluded. Class 2 occurs only as a prediction: F1 = 0, included.
    cm = confusion_matrix([0, 0, 1, 1], [0, 2, 1, 1], 4)
    assert per_class_f1(cm) == [pytest.approx(2 / 3), 1.0, 0.0, None]
    assert macro_f1(cm) == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_perfect_and_empty():
    assert macro_f1(confusion_matrix([0, 1, 2], [0, 1, 2], 6)) == 1.0
    empty = confusion_matrix([], [], 3)
    assert empty.tolist() == [[0] * 3] * 3
    assert math.isnan(macro_f1(empty)) and math.isnan(accuracy(empty))


def test_bad_labels():
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 3)
