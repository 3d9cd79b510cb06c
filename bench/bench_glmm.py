"""The mixed models of a study the paper's size: 4 conditions between subjects × 104
participants × 24 judgements (12 real photographs, 12 AI images from pools of 100 scenes
per condition), simulated from the signal-detection model with participant and image
variation. Times ``survey.inference.analyse_rows``: per condition the logistic model of
being fooled and the probit d′/c model (crossed random effects), the exact binomial and
mixed-model equivalence tests, then the joint model with its six Holm-adjusted contrasts.
Target: under 10 s. Prints the time (and CPU time, and the load average: other work on
the machine slows the wall-clock figure) and the models' convergence.

    python bench/bench_glmm.py [--participants 104] [--conditions 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from survey.inference import Row, analyse_rows  # noqa: E402


def simulate(conditions: int, participants: int, seed: int, pool: int = 100) -> list[Row]:
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    image = {}
    for k in range(conditions):
        d_prime = 0.1 + 0.1 * k
        for p in range(participants):
            c, d = rng.normal(0.0, 0.3), d_prime + rng.normal(0.0, 0.3)
            for truth, t in (("real", 0.5), ("ai", -0.5)):
                for scene in rng.choice(pool, 12, replace=False):
                    key = (truth, int(scene), k if truth == "ai" else -1)
                    image.setdefault(key, rng.normal(0.0, 0.5))
                    said_real = rng.random() < stats.norm.cdf(c + d * t + image[key])
                    answer = "real" if said_real else "ai"
                    rows.append(Row(f"{k}-{p}", f"s{scene}", f"model {k + 1}", truth, answer))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=104)
    parser.add_argument("--conditions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = simulate(args.conditions, args.participants, args.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    result = analyse_rows(rows)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{len(rows)} judgements, {args.conditions} conditions × {args.participants} "
        f"participants × 24: all mixed models in {wall:.2f} s (CPU {cpu:.2f} s; "
        f"load average {os.getloadavg()[0]:.1f}); target < 10 s"
    )
    for c in result.conditions:
        g, s = c.glmm, c.sdt
        print(
            f"  {c.condition}: fooling logit {g.intercept:+.3f} (SE {g.intercept_se:.3f}), "
            f"SDs {g.participant_sd:.2f}/{g.image_sd:.2f}, converged {g.converged}, "
            f"singular {g.singular}; d' {s.d_prime:.3f}, c {s.criterion:+.3f}, "
            f"converged {s.converged}, singular {s.singular}; {c.verdict}"
        )
    if result.joint is not None:
        j = result.joint
        print(f"  joint model: converged {j.converged}, singular {j.singular}")
        for k in result.contrasts:
            print(f"    {k.a} − {k.b}: {k.estimate:+.3f}, Holm p = {k.p_holm:.3g}")


if __name__ == "__main__":
    main()
