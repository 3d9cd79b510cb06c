"""The sample-size planner (survey.power): the simulation against the closed forms where
they exist (both SDs 0: the exact binomial TOST's power summed over its rejection region,
Wilson's interval width, the normal width formula), the fast fit against a general
optimiser and the platform's GLMM, power rising with participants, reproducibility, and
absurd inputs refused in words. Seeded; tolerances are about 3 Monte Carlo SEs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special, stats
from statsmodels.stats.proportion import binom_tost

from survey.equivalence import binomial_tost
from survey.power import (
    Plan,
    PlanError,
    _tost_p,
    exact_binomial_tost_power,
    exact_wilson_width_assurance,
    fit_fixed_sds,
    normal_width_participants,
    outcomes,
    plan,
    simulate_study,
)
from survey.statistics import wilson_interval

ROOT = Path(__file__).resolve().parents[2]


def _within_mc(simulated: np.ndarray, exact: float, sigmas: float = 3.0) -> None:
    se = math.sqrt(exact * (1 - exact) / simulated.size)
    assert abs(simulated.mean() - exact) <= sigmas * se + 1e-12, (simulated.mean(), exact, se)


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------


def test_tost_p_is_statsmodels_binom_tost():
    n, margin = 137, 0.07
    for k in (0, 30, 60, 68, 69, 75, 100, 137):
        assert _tost_p(np.array([k]), n, margin)[0] == pytest.approx(
            binom_tost(k, n, 0.5 - margin, 0.5 + margin)[0], abs=1e-12
        )


def test_exact_power_sums_the_platforms_tost_over_every_count():
    n, rate, margin, alpha = 120, 0.48, 0.1, 0.05
    by_hand = sum(
        stats.binom.pmf(k, n, rate)
        for k in range(n + 1)
        if binomial_tost(k, n, margin, alpha).equivalent
    )
    assert exact_binomial_tost_power(n, rate, margin, alpha) == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize(("rate", "participants"), [(0.5, 40), (0.47, 60), (0.53, 25)])
def test_sds_zero_simulation_agrees_with_the_exact_binomial_tost_power(rate, participants):
    p = Plan(
        rate=rate,
        participant_sd=0,
        image_sd=0,
        analysis="binomial",
        simulations=1000,
        seed=11,
    ).checked()
    exact = exact_binomial_tost_power(participants * 24, rate, p.margin, p.alpha)
    assert 0.05 < exact < 0.95  # a point where the test can tell
    _within_mc(outcomes(p, participants), exact)


def test_sds_zero_simulation_agrees_with_the_exact_wilson_width_assurance():
    p = Plan(
        rate=0.3,
        participant_sd=0,
        image_sd=0,
        goal="width",
        width=0.06,
        analysis="binomial",
        simulations=1000,
        seed=5,
    ).checked()
    n = 37  # where the width of Wilson's interval, varying with the count, straddles w
    exact = exact_wilson_width_assurance(n * 24, 0.3, 0.06)
    assert 0.05 < exact < 0.95
    _within_mc(outcomes(p, n), exact)


def test_width_answer_agrees_with_the_normal_closed_form():
    """SDs 0: the simulated studies' 95 % interval (the fixed-SD analysis' logit Wald interval,
    carried to the rate) is narrower than w from where the normal formula
    2 z √(p(1 − p)/N) ≤ w says: with p̂ near p the width barely varies, so the curve
    jumps from 0 to 1 there."""
    rate, width, k = 0.45, 0.06, 24
    closed = normal_width_participants(rate, width, k)
    exact_n = (2 * 1.959963984540054) ** 2 * rate * (1 - rate) / width**2 / k
    assert closed == math.ceil(exact_n)
    result = plan(
        Plan(
            rate=rate,
            participant_sd=0,
            image_sd=0,
            goal="width",
            width=width,
            simulations=200,
            analysis="fixed",  # SDs 0 fixed: the pooled logistic fit
            participants=tuple(range(closed - 3, closed + 2)),
        )
    )
    power = {c.participants: c.power for c in result.curve}
    assert power[closed - 2] < 0.2 and power[closed] > 0.8
    assert abs(result.interpolated - exact_n) <= 1.5
    # and Wilson's interval of the pooled rate agrees with the normal formula there
    n = closed * k
    interval = wilson_interval(round(rate * n), n)
    assert interval.high - interval.low == pytest.approx(width, abs=0.001)


# --------------------------------------------------------------------------------------------
# The fast fit
# --------------------------------------------------------------------------------------------


def test_fast_fit_with_sds_zero_is_the_pooled_logistic_fit():
    p = Plan(participant_sd=0, image_sd=0).checked()
    study = simulate_study(p, 30, 0)
    fit = fit_fixed_sds(
        study.fooled,
        np.ones((study.fooled.size, 1)),
        study.participant,
        study.image,
        0.0,
        0.0,
        study.n_participants,
        study.n_images,
    )
    rate, n = study.fooled.mean(), study.fooled.size
    assert fit.converged
    assert fit.beta[0] == pytest.approx(special.logit(rate), abs=1e-8)
    assert math.sqrt(fit.vcov[0, 0]) == pytest.approx(
        1 / math.sqrt(n * rate * (1 - rate)), rel=1e-6
    )


def test_fast_fit_mode_and_covariance_match_a_general_optimiser():
    rng = np.random.default_rng(3)
    P, n_images, k = 12, 10, 6
    participant = np.repeat(np.arange(P), k)
    image = np.concatenate([rng.choice(n_images, k, replace=False) for _ in range(P)])
    y = (rng.random(P * k) < 0.4).astype(float)
    X = np.ones((P * k, 1))
    sp, si = 0.7, 0.4

    def objective(x):
        beta, a, b = x[0], x[1 : 1 + P], x[1 + P :]
        eta = beta + sp * a[participant] + si * b[image]
        return -np.sum(y * eta - np.logaddexp(0, eta)) + 0.5 * (a @ a + b @ b)

    reference = optimize.minimize(objective, np.zeros(1 + P + n_images), method="BFGS", tol=1e-10)
    fit = fit_fixed_sds(y, X, participant, image, sp, si, P, n_images)
    assert fit.converged
    assert fit.beta[0] == pytest.approx(reference.x[0], abs=1e-5)
    # the β block of the inverse Hessian, by finite differences of the objective's gradient
    H = optimize.approx_fprime(
        reference.x, lambda x: optimize.approx_fprime(x, objective, 1e-6), 1e-4
    )
    assert fit.vcov[0, 0] == pytest.approx(np.linalg.inv((H + H.T) / 2)[0, 0], rel=1e-3)


def test_fast_analysis_agrees_with_the_platforms_glmm_on_most_studies():
    """The same 30 simulated studies analysed by the fast fit and by survey.inference's
    fooling model (the platform's verdict): their equivalence verdicts mostly agree
    (bench/bench_power.py measures 91–97 % on 100 studies at several points)."""
    base = dict(rate=0.5, margin=0.08, participant_sd=0.5, image_sd=0.5, simulations=30, seed=2)
    fast = outcomes(Plan(**base).checked(), 40)
    glmm = outcomes(Plan(**base, analysis="glmm").checked(), 40)
    assert 0.2 < glmm.mean() < 0.95
    assert (fast == glmm).mean() >= 0.8


# --------------------------------------------------------------------------------------------
# The curve
# --------------------------------------------------------------------------------------------


def test_power_rises_with_participants():
    result = plan(Plan(goal="difference", delta=0.12, simulations=60, seed=4))
    powers = [c.power for c in result.curve]
    ns = [c.participants for c in result.curve]
    assert ns == sorted(ns) and len(ns) >= 5
    for before, after in zip(result.curve, result.curve[1:], strict=False):
        assert after.power >= before.power - 2 * max(before.mc_se, 0.02)
    assert powers[-1] - powers[0] > 0.3
    for c in result.curve:
        assert c.mc_se == pytest.approx(math.sqrt(c.power * (1 - c.power) / 60))


def test_a_study_is_the_first_participants_of_a_larger_one():
    p = Plan(goal="difference", delta=0.1).checked()
    small, large = simulate_study(p, 7, 3), simulate_study(p, 11, 3)
    for c in (0, 1):
        s = small.condition == c
        first = (large.condition == c) & (large.participant < c * 11 + 7)
        assert np.array_equal(small.fooled[s], large.fooled[first])


def test_seeded_plans_are_reproducible_and_seeds_differ():
    a = plan(Plan(simulations=20, seed=9, participants=(40, 80)))
    b = plan(Plan(simulations=20, seed=9, participants=(40, 80)))
    assert a.curve == b.curve
    nine, ten = (simulate_study(Plan(seed=s).checked(), 10, 0).fooled for s in (9, 10))
    assert not np.array_equal(nine, ten)


def test_each_participant_sees_half_real_half_ai_never_twice_and_exposures_balance():
    p = Plan(images_per_participant=24, pool=30).checked()
    study = simulate_study(p, 17, 0)
    for person in range(17):
        mine = study.image[study.participant == person]
        assert len(set(mine.tolist())) == 24
        assert study.real[study.participant == person].sum() == 12
    counts = np.bincount(study.image, minlength=60)
    assert counts[:30].max() - counts[:30].min() <= 1
    assert counts[30:].max() - counts[30:].min() <= 1


def test_unreachable_equivalence_is_said_in_words():
    result = plan(Plan(rate=0.45, margin=0.05, simulations=10, participants=(50,)))
    assert result.participants is None
    assert any("cannot be expected" in n for n in result.notes)


def test_a_small_image_pool_is_said_to_set_a_floor():
    result = plan(Plan(rate=0.5, margin=0.02, image_sd=1.5, pool=12, simulations=5))
    assert any("pool" in n for n in result.notes)


# --------------------------------------------------------------------------------------------
# Absurd inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "option", "words"),
    [
        ({"rate": 0}, "rate", "strictly between 0 and 1"),
        ({"rate": 1}, "rate", "strictly between 0 and 1"),
        ({"rate": 1.5}, "rate", "strictly between 0 and 1"),
        ({"rate": "half"}, "rate", "expected a number"),
        ({"participant_sd": -0.1}, "participant_sd", "cannot be negative"),
        ({"image_sd": -1}, "image_sd", "cannot be negative"),
        ({"margin": 0.5}, "margin", "strictly between 0 and 0.5"),
        ({"margin": 0.7}, "margin", "strictly between 0 and 0.5"),
        ({"simulations": 0}, "simulations", "between 1 and 100,000"),
        ({"simulations": 10**9}, "simulations", "between 1 and 100,000"),
        ({"images_per_participant": 23}, "images_per_participant", "must be even"),
        ({"pool": 5}, "pool", "at least 12"),
        ({"goal": "difference"}, "delta", "needs the difference"),
        ({"goal": "difference", "delta": 0.6}, "delta", "strictly between 0 and 1"),
        ({"goal": "width"}, "width", "needs the largest width"),
        ({"goal": "width", "width": 0}, "width", "strictly between 0 and 1"),
        ({"power": 1}, "power", "strictly between 0 and 1"),
        ({"alpha": float("nan")}, "alpha", "strictly between 0 and 0.5"),
        ({"goal": "fooling"}, "goal", "equivalence, difference, width"),
    ],
)
def test_absurd_inputs_are_refused_in_words(changes, option, words):
    with pytest.raises(PlanError) as caught:
        plan(Plan(**changes))
    assert caught.value.option == option
    assert words in str(caught.value)


def test_every_bad_input_is_named_at_once_and_the_first_is_raised():
    bad = Plan(rate=2, image_sd=-1, pool=3, alpha=0.9, goal="difference", delta=0.2)
    # Δ is not checked against a bad rate: fixing the rate could make it fine.
    assert [p.option for p in bad.problems()] == ["rate", "image_sd", "pool", "alpha"]
    with pytest.raises(PlanError) as caught:
        bad.checked()
    assert caught.value.option == "rate"
    assert Plan().problems() == []


def test_the_planner_is_pure():
    """survey.power, with every analysis run, imports no Django and nothing of the site."""
    code = (
        "import sys\n"
        "from survey.power import Plan, outcomes\n"
        "for a in ('fast', 'fixed', 'glmm', 'binomial'):\n"
        "    outcomes(Plan(analysis=a, simulations=1).checked(), 5)\n"
        "site = ('django', 'studyplatform', 'worker')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in site]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
