"""survey.preference: Bradley–Terry maximum likelihood against a direct scipy maximisation
written here, a two-item case by hand, the intervals against a finite-difference Hessian,
and the cases where the estimate does not exist."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import norm

from survey import preference
from survey.preference import Comparison, PreferenceError, bradley_terry, read_comparisons

Z95 = norm.ppf(0.975)


def _comparisons(pairs) -> list[Comparison]:
    """(winner, loser) pairs, item_a alternating between the two sides."""
    return [
        Comparison(f"p{k % 7}", *((w, lo) if k % 2 else (lo, w)), winner=w)
        for k, (w, lo) in enumerate(pairs)
    ]


def _simulated(n_items=8, n=1500, seed=3):
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 1.0, n_items)
    names = [f"run-{i:02d}" for i in range(n_items)]
    pairs = []
    for _ in range(n):
        i, j = rng.choice(n_items, 2, replace=False)
        p = 1.0 / (1.0 + math.exp(-(strength[i] - strength[j])))
        pairs.append((names[i], names[j]) if rng.random() < p else (names[j], names[i]))
    return names, pairs


def _reference_fit(names, pairs):
    """Direct maximisation of Σ log σ(s_winner − s_loser) with the first item fixed at 0,
    written independently of the module (loops over comparisons), then centred. Returns
    the centred scores and their covariance from a central-difference Hessian of the
    reduced negative log-likelihood."""
    index = {name: i for i, name in enumerate(names)}
    idx = [(index[w], index[lo]) for w, lo in pairs]
    n = len(names)

    def full(free):
        return np.concatenate([[0.0], free])

    def nll(free):
        s = full(free)
        return sum(math.log1p(math.exp(-(s[w] - s[lo]))) for w, lo in idx)

    def grad(free):
        s = full(free)
        g = np.zeros(n)
        for w, lo in idx:
            q = 1.0 / (1.0 + math.exp(s[w] - s[lo]))  # P(loser wins)
            g[w] -= q
            g[lo] += q
        return g[1:]

    fit = minimize(nll, np.zeros(n - 1), jac=grad, method="BFGS", options={"gtol": 1e-8})
    assert np.abs(grad(fit.x)).max() < 1e-4, fit.message  # at the maximum (in counts)
    h = 1e-5
    hess = np.empty((n - 1, n - 1))
    for k in range(n - 1):
        step = np.zeros(n - 1)
        step[k] = h
        hess[:, k] = (grad(fit.x + step) - grad(fit.x - step)) / (2 * h)
    cov_free = np.linalg.inv((hess + hess.T) / 2)
    embed = np.vstack([np.zeros(n - 1), np.eye(n - 1)])  # free -> full (item 0 at 0)
    centre = np.eye(n) - 1.0 / n
    cov = centre @ embed @ cov_free @ embed.T @ centre.T
    scores = centre @ full(fit.x)
    return scores, cov


@pytest.fixture(scope="module")
def simulated():
    names, pairs = _simulated()
    return names, pairs, bradley_terry(_comparisons(pairs)), _reference_fit(names, pairs)


def test_scores_agree_with_a_direct_scipy_maximisation_to_1e_4(simulated):
    names, _, result, (reference, _) = simulated
    mine = {r["item"]: r["score"] for r in result["items"]}
    for i, name in enumerate(names):
        assert mine[name] == pytest.approx(reference[i], abs=1e-4)
    assert sum(mine.values()) == pytest.approx(0.0, abs=1e-12)
    # In fact much closer than the 1e-4: both are the maximum.
    assert max(abs(mine[n] - reference[i]) for i, n in enumerate(names)) < 1e-6


def test_intervals_agree_with_a_finite_difference_hessian(simulated):
    names, _, result, (reference, cov) = simulated
    by_item = {r["item"]: r for r in result["items"]}
    for i, name in enumerate(names):
        r = by_item[name]
        se = math.sqrt(cov[i, i])
        assert r["se"] == pytest.approx(se, rel=1e-4)
        assert r["ci"][0] == pytest.approx(r["score"] - Z95 * se, rel=1e-4, abs=1e-6)
        assert r["ci"][1] == pytest.approx(r["score"] + Z95 * se, rel=1e-4, abs=1e-6)
    order = result["covariance"]["items"]
    matrix = np.array(result["covariance"]["matrix"])
    perm = [names.index(name) for name in order]
    np.testing.assert_allclose(matrix, cov[np.ix_(perm, perm)], rtol=1e-4, atol=1e-7)


def test_wins_comparisons_and_counts(simulated):
    names, pairs, result, _ = simulated
    for r in result["items"]:
        assert r["wins"] == sum(w == r["item"] for w, _ in pairs)
        assert r["comparisons"] == sum(r["item"] in pair for pair in pairs)
    assert result["n_comparisons"] == len(pairs)
    assert result["n_items"] == len(names)
    assert result["n_participants"] == 7
    scores = [r["score"] for r in result["items"]]
    assert scores == sorted(scores, reverse=True)
    assert result["fit"]["max_score_equation_residual"] <= 1e-9


def test_two_items_by_hand():
    # a beat b 3 times, b beat a once: s_a − s_b = log(3/1); the information is
    # n p (1 − p) = 4 · 3/4 · 1/4 = 3/4, so var(s_a − s_b) = 4/3 and var(s_a) = 4/3 / 4.
    result = bradley_terry(_comparisons([("a", "b")] * 3 + [("b", "a")]))
    a, b = result["items"]
    assert (a["item"], b["item"]) == ("a", "b")
    assert a["score"] - b["score"] == pytest.approx(math.log(3), abs=1e-10)
    assert a["score"] == pytest.approx(math.log(3) / 2, abs=1e-10)
    assert b["score"] == pytest.approx(-math.log(3) / 2, abs=1e-10)
    se = math.sqrt(4 / 3) / 2
    assert a["se"] == pytest.approx(se, rel=1e-9) and b["se"] == pytest.approx(se, rel=1e-9)
    assert a["ci"] == pytest.approx([math.log(3) / 2 - Z95 * se, math.log(3) / 2 + Z95 * se])
    assert (a["wins"], a["comparisons"], b["wins"], b["comparisons"]) == (3, 4, 1, 4)
    assert result["log_likelihood"] == pytest.approx(3 * math.log(0.75) + math.log(0.25))
    assert preference.win_probability(a["score"], b["score"]) == pytest.approx(0.75)


def test_balanced_wins_give_equal_scores():
    pairs = [("x", "y"), ("y", "x"), ("y", "z"), ("z", "y"), ("x", "z"), ("z", "x")] * 2
    result = bradley_terry(_comparisons(pairs))
    assert [r["score"] for r in result["items"]] == pytest.approx([0, 0, 0], abs=1e-12)


def test_the_polish_reaches_the_maximum_from_a_poor_start(simulated, monkeypatch):
    """A start 0.01 off the maximum (as from a loose stopping rule) still ends at it."""
    names, pairs, _, (reference, _) = simulated
    rng = np.random.default_rng(0)
    monkeypatch.setattr(
        preference.choix,
        "mm_pairwise",
        lambda n, data, **kw: reference + rng.normal(0, 0.01, n),
    )
    result = bradley_terry(_comparisons(pairs))
    mine = {r["item"]: r["score"] for r in result["items"]}
    assert max(abs(mine[n] - reference[i]) for i, n in enumerate(names)) < 1e-6
    assert result["fit"]["newton_steps"] >= 1 and result["fit"]["polish_change"] > 1e-3


def test_choix_not_converging_falls_back_to_newton(simulated, monkeypatch):
    names, pairs, _, (reference, _) = simulated

    def refuses(*args, **kwargs):
        raise RuntimeError("Did not converge after 10000 iterations")

    monkeypatch.setattr(preference.choix, "mm_pairwise", refuses)
    result = bradley_terry(_comparisons(pairs))
    mine = {r["item"]: r["score"] for r in result["items"]}
    assert max(abs(mine[n] - reference[i]) for i, n in enumerate(names)) < 1e-6
    assert result["fit"]["mm_converged"] is False


# ---------------------------------------------------------------------------------------
# When the maximum-likelihood estimate does not exist
# ---------------------------------------------------------------------------------------


def test_a_disconnected_graph_names_its_groups():
    pairs = [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("d", "e"), ("e", "d")]
    with pytest.raises(PreferenceError, match="not connected") as caught:
        bradley_terry(_comparisons(pairs))
    assert "{'c', 'd', 'e'}; {'a', 'b'}" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_an_item_that_never_wins_is_named():
    pairs = [("a", "b"), ("b", "a"), ("a", "loser"), ("b", "loser")]
    with pytest.raises(PreferenceError, match=r"'loser' never won \(score −∞\)"):
        bradley_terry(_comparisons(pairs))


def test_an_item_that_never_loses_is_named():
    pairs = [("a", "b"), ("b", "a"), ("champion", "a"), ("champion", "b")]
    with pytest.raises(PreferenceError, match=r"'champion' never lost \(score \+∞\)"):
        bradley_terry(_comparisons(pairs))


def test_a_group_that_beat_every_other_item_is_named():
    # Everyone wins and loses, the graph is connected, but {a, b} won every game against
    # {c, d}: the gap between the groups is infinite.
    pairs = [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("a", "c"), ("b", "d")]
    with pytest.raises(PreferenceError, match=r"items \{'a', 'b'\} won every comparison") as e:
        bradley_terry(_comparisons(pairs))
    assert "{'c', 'd'}" in str(e.value)


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def test_reading_ignores_other_columns_case_and_blank_lines():
    text = "Winner, item_b ,ITEM_A,participant,rt\nx,y,x,p1,300\n\ny,y,z,p2,200\n"
    assert read_comparisons(io.StringIO(text)) == [
        Comparison("p1", "x", "y", "x"),
        Comparison("p2", "z", "y", "y"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("participant,item_a,item_b\np,a,b\n", "line 1: the header has no 'winner' column"),
        ("participant,item_a,item_b,winner\n", "no comparisons"),
        ("participant,item_a,item_b,winner\np,a,b,a\np,a,b,c\n", "line 3: the winner 'c' is"),
        ("participant,item_a,item_b,winner\np,a,a,a\n", "line 2: item 'a' is compared with"),
        ("participant,item_a,item_b,winner\np,a,b,a\n,a,b,a\n", "line 3: the participant is"),
        ("participant,item_a,item_b,winner\np,a,b\n", "line 2: no winner cell"),
    ],
)
def test_bad_files_are_named_by_line_or_column(text, message):
    with pytest.raises(PreferenceError, match=message):
        read_comparisons(io.StringIO(text))


def test_the_preference_and_ratings_modules_import_no_django():
    code = (
        "import sys, survey.preference, survey.ratings, survey.csv_input; "
        "print(sorted(m for m in ('django', 'torch') if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run.stdout.strip() == "[]"
