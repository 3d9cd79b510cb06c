"""Is a fooling rate at chance? Equivalence tests against 0.5 ± δ (Lakens 2017), pure
NumPy/SciPy/statsmodels.

A non-significant test of "rate = 0.5" does not show that people cannot tell: it may only
show too few judgements. Two one-sided tests (TOST) with a margin δ fixed in advance do:
the rate is *equivalent to chance within ±δ* when both "rate ≤ 0.5 − δ" and
"rate ≥ 0.5 + δ" are rejected at α.

* **Exact binomial TOST** of the pooled fooling rate (statsmodels' ``binom_tost``):
  p_low = P(X ≥ k | 0.5 − δ), p_high = P(X ≤ k | 0.5 + δ), p = max(p_low, p_high);
  equivalent when p < α. It treats judgements as independent.
* **Mixed-model TOST**: the model-based rate's 1 − 2α (90 %) interval, from the logit
  intercept and its standard error, lies inside (0.5 − δ, 0.5 + δ). It accounts for
  participants and images.

The verdict is in words: "equivalent to chance within ±δ", "different from chance" (the
two-sided test at α rejects 0.5 and equivalence is not shown), or "inconclusive" (neither),
each with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special, stats
from statsmodels.stats.proportion import binom_tost

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MARGIN",
    "EQUIVALENT",
    "DIFFERENT",
    "INCONCLUSIVE",
    "BinomialTOST",
    "ModelTOST",
    "binomial_tost",
    "check_alpha",
    "check_margin",
    "model_tost",
]

DEFAULT_MARGIN = 0.05
DEFAULT_ALPHA = 0.05
CHANCE = 0.5
EQUIVALENT = "equivalent to chance within ±{margin}"
DIFFERENT = "different from chance"
INCONCLUSIVE = "inconclusive"


def check_margin(margin: float) -> float:
    margin = float(margin)
    if not 0.0 < margin < 0.5:
        raise ValueError(f"the margin δ must lie strictly between 0 and 0.5, got {margin!r}")
    return margin


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"α must lie strictly between 0 and 0.5, got {alpha!r}")
    return alpha


def _margin_text(margin: float) -> str:
    return f"{100 * margin:g} percentage points"


def _verdict(equivalent: bool, different: bool, margin: float) -> str:
    if equivalent:
        return EQUIVALENT.format(margin=_margin_text(margin))
    return DIFFERENT if different else INCONCLUSIVE


@dataclass(frozen=True)
class BinomialTOST:
    """The exact binomial TOST of k fooled out of n against 0.5 ± margin."""

    margin: float
    alpha: float
    fooled: int
    n: int
    rate: float
    p_low: float  # H0: rate ≤ 0.5 − δ
    p_high: float  # H0: rate ≥ 0.5 + δ
    p: float  # max(p_low, p_high)
    equivalent: bool
    p_two_sided: float  # the exact binomial test of rate = 0.5
    verdict: str
    reason: str


def binomial_tost(
    fooled: int, n: int, margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA
) -> BinomialTOST:
    margin, alpha = check_margin(margin), check_alpha(alpha)
    if n <= 0 or not 0 <= fooled <= n:
        raise ValueError(f"need 0 ≤ fooled ≤ n and n > 0, got fooled = {fooled}, n = {n}")
    p, p_low, p_high = (float(v) for v in binom_tost(fooled, n, CHANCE - margin, CHANCE + margin))
    equivalent = p < alpha
    p_two = float(stats.binomtest(int(fooled), int(n), CHANCE).pvalue)
    different = p_two < alpha
    low, high = CHANCE - margin, CHANCE + margin
    if equivalent:
        reason = (
            f"both one-sided exact binomial tests reject a rate outside {low:g}–{high:g} "
            f"(p = {p:.3g} < α = {alpha:g})"
        )
        if different:
            reason += f"; the rate also differs from 0.5 (p = {p_two:.3g}), by less than δ"
    elif different:
        reason = (
            f"the exact binomial test rejects 0.5 (p = {p_two:.3g} < α = {alpha:g}) and "
            f"equivalence within ±{margin:g} is not shown (TOST p = {p:.3g})"
        )
    else:
        reason = (
            f"neither 0.5 is rejected (p = {p_two:.3g}) nor is equivalence within ±{margin:g} "
            f"shown (TOST p = {p:.3g} ≥ α = {alpha:g}): more judgements are needed"
        )
    return BinomialTOST(
        margin,
        alpha,
        int(fooled),
        int(n),
        fooled / n,
        p_low,
        p_high,
        p,
        equivalent,
        p_two,
        _verdict(equivalent, different, margin),
        reason,
    )


@dataclass(frozen=True)
class ModelTOST:
    """The mixed model's version: the 1 − 2α interval of the model-based rate inside
    0.5 ± margin. ``usable`` is False (and the verdict says why) when the model failed."""

    margin: float
    alpha: float
    rate: float | None
    interval: tuple[float, float] | None  # 1 − 2α, on the rate scale
    level: float
    equivalent: bool
    p_two_sided: float | None  # Wald test of logit = 0
    verdict: str
    reason: str


def model_tost(
    intercept: float | None,
    se: float | None,
    margin: float = DEFAULT_MARGIN,
    alpha: float = DEFAULT_ALPHA,
    *,
    problem: str | None = None,
) -> ModelTOST:
    """From the logit intercept and its standard error. ``problem``: why the model's
    numbers cannot be used (non-convergence); the verdict is then inconclusive."""
    margin, alpha = check_margin(margin), check_alpha(alpha)
    level = 1 - 2 * alpha
    if problem or intercept is None or se is None or not math.isfinite(se) or se <= 0:
        why = problem or "the model gave no standard error"
        return ModelTOST(
            margin, alpha, None, None, level, False, None, INCONCLUSIVE, f"no model verdict: {why}"
        )
    z = float(stats.norm.ppf(1 - alpha))
    low, high = float(special.expit(intercept - z * se)), float(special.expit(intercept + z * se))
    equivalent = CHANCE - margin < low and high < CHANCE + margin
    p_two = float(2 * stats.norm.sf(abs(intercept) / se))
    different = p_two < alpha
    span = f"{100 * level:g} % interval {low:.3f}–{high:.3f}"
    if equivalent:
        reason = f"the model's {span} lies inside {CHANCE - margin:g}–{CHANCE + margin:g}"
        if different:
            reason += f"; the rate also differs from 0.5 (p = {p_two:.3g}), by less than δ"
    elif different:
        reason = (
            f"the model rejects 0.5 (Wald p = {p_two:.3g} < α = {alpha:g}) and its {span} "
            f"is not inside {CHANCE - margin:g}–{CHANCE + margin:g}"
        )
    else:
        reason = (
            f"the model neither rejects 0.5 (Wald p = {p_two:.3g}) nor puts its {span} "
            f"inside {CHANCE - margin:g}–{CHANCE + margin:g}: more participants or images "
            "are needed"
        )
    return ModelTOST(
        margin,
        alpha,
        float(special.expit(intercept)),
        (low, high),
        level,
        equivalent,
        p_two,
        _verdict(equivalent, different, margin),
        reason,
    )
