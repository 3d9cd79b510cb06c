"""How long drawing one colour-vision plate takes (survey.colour_screen.plate_png), and how
large the PNG is: the plate page's image is drawn on request (then kept in a small cache
per process). Run: python bench/bench_colour_plates.py"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from survey import colour_screen as cs  # noqa: E402


def main(screens: int = 3) -> None:
    times, sizes = [], []
    for seed in range(screens):
        for plate in cs.screen_plates(seed):
            start = time.perf_counter()
            data = cs.plate_png(plate)
            times.append(time.perf_counter() - start)
            sizes.append(len(data))
    ms = [t * 1000 for t in times]
    kib = [n / 1024 for n in sizes]
    print(f"{len(times)} plates of 480 px")
    print(f"time per plate: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms")
    print(f"PNG size: median {statistics.median(kib):.0f} KiB, max {max(kib):.0f} KiB")


if __name__ == "__main__":
    main()
