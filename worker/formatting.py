"""Small formatting helpers shared by the selectors, the templates and the JSON endpoints."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """ "1 h 05 min", "3 min 20 s", "45 s"; "" when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def format_number(value, digits: int = 3) -> str:
    """A metric with a fixed number of decimals; "—" when missing or not finite."""
    if value is None or isinstance(value, bool):
        return "—"
    if isinstance(value, int):
        return str(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"
