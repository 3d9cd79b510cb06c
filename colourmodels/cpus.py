"""The CPU cores this process may run on (free of torch: the run command's launcher uses it)."""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    """The cores of this process's affinity mask (a container's or ``taskset``'s limit), or
    the machine's count where there is no such mask (not on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
