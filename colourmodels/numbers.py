"""Numbers as strict JSON and the pages want them."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float; None when missing or not a finite number (NaN, ±infinity,
    something that is not a number, a bool)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
