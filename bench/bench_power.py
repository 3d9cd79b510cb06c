"""The sample-size planner (survey.power): the time of the planner page's default plan, and
the agreement of the fast analyses (the crossed model with its SDs estimated by moments,
"fast", or fixed at the planned values, "fixed") with the platform's own GLMM fit on a few
points, the same simulated studies analysed each way.

    python bench/bench_power.py [--simulations 100] [--skip-validation]

Prints the figures; asserts nothing (speed and agreement are measured here, not tested).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from survey.power import Plan, outcomes, plan  # noqa: E402

#: The page's default plan (survey.power_page.PAGE_SIMULATIONS simulations per point).
PAGE_DEFAULT = Plan(simulations=50)

#: (label, plan, participants per condition) where fast and full are compared.
POINTS = [
    ("equivalence, rate 0.5, δ 0.05", Plan(), 100),
    (
        "equivalence, rate 0.48, δ 0.1, SDs 0.8/0.6",
        Plan(rate=0.48, margin=0.1, participant_sd=0.8, image_sd=0.6),
        30,
    ),
    ("difference 0.5 vs 0.6", Plan(goal="difference", delta=0.1), 50),
    ("95 % width ≤ 0.1, rate 0.45", Plan(rate=0.45, goal="width", width=0.1), 48),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--skip-validation", action="store_true")
    args = parser.parse_args()

    wall, cpu = time.perf_counter(), time.process_time()
    result = plan(PAGE_DEFAULT)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    fits = len(result.curve) * PAGE_DEFAULT.simulations
    print(
        f"page default ({PAGE_DEFAULT.goal}, {len(result.curve)} points × "
        f"{PAGE_DEFAULT.simulations} simulations = {fits} fits, fast analysis): "
        f"{wall:.2f} s (CPU {cpu:.2f} s, {1000 * cpu / fits:.1f} ms per fit; load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(f"  answer: {result.participants} participants per condition")
    if args.skip_validation:
        return
    print(f"fast against the platform's GLMM, {args.simulations} studies per point:")
    for label, base, n in POINTS:
        fast_plan = base.checked()
        times = {}
        hits = {}
        for analysis in ("fast", "fixed", "glmm"):
            p = Plan(**{**fast_plan.__dict__, "analysis": analysis})
            start = time.process_time()
            hits[analysis] = outcomes(p, n, args.simulations)
            times[analysis] = time.process_time() - start
        g = hits["glmm"]
        parts = []
        for analysis in ("fast", "fixed"):
            f = hits[analysis]
            # The paired difference's standard error (the same studies analysed twice).
            d = f.astype(float) - g.astype(float)
            se = math.sqrt(d.var(ddof=1) / d.size) if d.size > 1 else float("nan")
            parts.append(
                f"{analysis} {f.mean():.3f} ({f.mean() - g.mean():+.3f} ± {se:.3f}, same "
                f"verdict in {100 * (f == g).mean():.0f} %, "
                f"{1000 * times[analysis] / f.size:.0f} ms CPU a study)"
            )
        print(
            f"  {label}, n = {n}: power GLMM {g.mean():.3f} "
            f"({1000 * times['glmm'] / g.size:.0f} ms CPU a study); " + "; ".join(parts)
        )


if __name__ == "__main__":
    main()
