"""survey.equivalence: the exact binomial TOST (checked against statsmodels and by hand),
the mixed model's interval version and the verdicts in words."""

import math

import pytest
from scipy import special, stats
from statsmodels.stats.proportion import binom_tost

from survey.equivalence import (
    DIFFERENT,
    INCONCLUSIVE,
    binomial_tost,
    model_tost,
)


def test_binomial_tost_by_hand_with_scipy():
    # 540 of 1000 against 0.45–0.55: P(X ≥ 540 | 0.45) and P(X ≤ 540 | 0.55).
    result = binomial_tost(540, 1000, margin=0.05)
    p_low = stats.binom.sf(539, 1000, 0.45)
    p_high = stats.binom.cdf(540, 1000, 0.55)
    assert result.p_low == pytest.approx(p_low, rel=1e-12)
    assert result.p_high == pytest.approx(p_high, rel=1e-12)
    assert result.p == pytest.approx(max(p_low, p_high), rel=1e-12)
    # An off-by-one (P(X > 540)) or the smaller of the two would be caught here.
    assert result.p != pytest.approx(stats.binom.sf(540, 1000, 0.45), rel=1e-3)
    assert result.p != pytest.approx(min(p_low, p_high), rel=1e-3)
    assert result.p == pytest.approx(0.2728, abs=1e-3)
    assert not result.equivalent


@pytest.mark.parametrize(
    "fooled, n, margin", [(1248, 2496, 0.05), (1123, 2496, 0.05), (60, 100, 0.1), (7, 9, 0.2)]
)
def test_binomial_tost_matches_statsmodels(fooled, n, margin):
    result = binomial_tost(fooled, n, margin=margin)
    p, p_low, p_high = binom_tost(fooled, n, 0.5 - margin, 0.5 + margin)
    assert (result.p, result.p_low, result.p_high) == pytest.approx((p, p_low, p_high))


def test_a_rate_at_chance_with_many_judgements_is_equivalent():
    result = binomial_tost(1250, 2496, margin=0.05)
    assert result.equivalent and result.p < 0.05
    assert result.verdict == "equivalent to chance within ±5 percentage points"
    assert "both one-sided" in result.reason


def test_a_rate_far_from_chance_is_different():
    result = binomial_tost(1000, 2496, margin=0.05)  # 40 %
    assert not result.equivalent and result.verdict == DIFFERENT
    assert result.p_two_sided < 0.05 and "equivalence" in result.reason


def test_few_judgements_are_inconclusive():
    result = binomial_tost(11, 20, margin=0.05)
    assert not result.equivalent and result.verdict == INCONCLUSIVE
    assert "more judgements are needed" in result.reason


def test_the_study_may_set_alpha():
    strict = binomial_tost(1310, 2496, margin=0.05, alpha=0.001)
    lenient = binomial_tost(1310, 2496, margin=0.05, alpha=0.05)
    assert lenient.equivalent and not strict.equivalent


@pytest.mark.parametrize("margin", [0, -0.1, 0.5, float("nan")])
def test_an_impossible_margin_is_refused(margin):
    with pytest.raises(ValueError, match="margin"):
        binomial_tost(10, 20, margin=margin)


def test_model_tost_uses_the_90_percent_interval():
    # logit 0.02 with SE 0.05: 90 % interval expit(0.02 ± 1.645 · 0.05).
    result = model_tost(0.02, 0.05, margin=0.05)
    z = stats.norm.ppf(0.95)
    low, high = special.expit(0.02 - z * 0.05), special.expit(0.02 + z * 0.05)
    assert result.interval == pytest.approx((low, high))
    assert result.level == pytest.approx(0.90)
    assert 0.45 < low and high < 0.55 and result.equivalent
    assert result.p_two_sided == pytest.approx(2 * stats.norm.sf(0.4))
    # Wider than the margin: not equivalent, and 0 is inside the interval: inconclusive.
    wide = model_tost(0.0, 0.2, margin=0.05)
    assert not wide.equivalent and wide.verdict == INCONCLUSIVE
    far = model_tost(-0.6, 0.05, margin=0.05)
    assert far.verdict == DIFFERENT and math.isclose(far.rate, special.expit(-0.6))


def test_model_tost_of_a_failed_model_gives_no_verdict_and_says_why():
    result = model_tost(0.1, 0.05, problem="the mixed model did not converge")
    assert result.verdict == INCONCLUSIVE and result.interval is None
    assert "did not converge" in result.reason
