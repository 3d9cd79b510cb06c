"""Bradley–Terry scores of pairwise preferences (pure: NumPy, SciPy and choix, no Django).

The model (Bradley & Terry 1952): item i beats item j with probability
``1 / (1 + exp(-(s_i - s_j)))``, where ``s`` are log-strengths. Only differences are
identified, so the scores are centred to mean 0: a score is the item's log-odds of winning
against an item of average strength, and two items' score difference is the log-odds of one
beating the other.

The fit is maximum likelihood. choix's ``mm_pairwise`` (Hunter's 2004 MM algorithm, which
increases the likelihood at every step) finds it; its stopping rule is a small step, not a
small gradient, so Newton steps on the exact log-likelihood then polish the estimate until
the score equations hold (every item's expected wins equal its observed wins to 1e-9), and
the result records how far the polish moved it.

Intervals are Wald intervals from the observed Fisher information of the centred fit. The
information is the weighted Laplacian ``I = Σ n_ij p_ij (1 - p_ij) (e_i - e_j)(e_i - e_j)ᵀ``
at the estimate (for this model it does not depend on the outcomes, so observed and expected
information agree). Its null space is the constant vector, the direction the centring
removes; the covariance of the centred estimate is the Moore–Penrose inverse ``I⁺`` (the
constrained-ML covariance ``P (P I P)⁺ P`` with ``P`` the centring projection, equal to
``I⁺`` because ``I 1 = 0``). A score's interval is ``s_i ± z_{1-α/2} √(I⁺)_ii``.

The ML estimate exists (is finite) exactly when, for every split of the items into two
groups, some item of each group beats some item of the other (Zermelo 1929; Hunter 2004,
Assumption 1): the directed graph of wins is strongly connected. Otherwise
:class:`PreferenceError` says which items break it, rather than returning a number.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass

import choix
import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm

from survey.csv_input import CsvInputError, column_positions, row_cells

REQUIRED_COLUMNS = ("participant", "item_a", "item_b", "winner")
DEFAULT_CONFIDENCE = 0.95
MM_MAX_ITER = 10_000
MM_TOL = 1e-10
GRADIENT_TOL = 1e-9
NEWTON_MAX_STEPS = 100
NAMES_SHOWN = 8


class PreferenceError(ValueError):
    """The comparisons cannot be analysed as they are (the message names the items, line
    or column at fault)."""


@dataclass(frozen=True)
class Comparison:
    participant: str
    item_a: str
    item_b: str
    winner: str

    @property
    def loser(self) -> str:
        return self.item_b if self.winner == self.item_a else self.item_a


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_comparisons(lines: Iterable[str]) -> list[Comparison]:
    """The comparisons of a CSV with columns participant, item_a, item_b, winner (the
    winner spelled as one of the two items; other columns ignored; blank lines skipped).
    Raises PreferenceError naming the line or column at fault."""
    reader = csv.reader(lines)
    try:
        where = column_positions(next(reader, None), REQUIRED_COLUMNS)
    except CsvInputError as exc:
        raise PreferenceError(str(exc)) from None
    comparisons: list[Comparison] = []
    for record in reader:
        line = reader.line_num
        try:
            cell = row_cells(record, where, line)
        except CsvInputError as exc:
            raise PreferenceError(str(exc)) from None
        if cell is None:
            continue
        if cell["item_a"] == cell["item_b"]:
            raise PreferenceError(f"line {line}: item {cell['item_a']!r} is compared with itself")
        if cell["winner"] not in (cell["item_a"], cell["item_b"]):
            raise PreferenceError(
                f"line {line}: the winner {cell['winner']!r} is neither item_a "
                f"{cell['item_a']!r} nor item_b {cell['item_b']!r}"
            )
        comparisons.append(Comparison(**cell))
    if not comparisons:
        raise PreferenceError("the file has a header but no comparisons")
    return comparisons


# --------------------------------------------------------------------------------------------
# Existence of the ML estimate
# --------------------------------------------------------------------------------------------


def _names(items: list[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:NAMES_SHOWN])
    more = len(items) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def check_estimable(items: list[str], wins: np.ndarray) -> None:
    """Raise PreferenceError unless the ML estimate exists. ``wins[i, j]`` is how often
    item i beat item j."""
    met = (wins + wins.T) > 0
    n_groups, group = connected_components(met, directed=False)
    if n_groups > 1:
        groups = [sorted(items[i] for i in np.flatnonzero(group == g)) for g in range(n_groups)]
        groups.sort(key=lambda g: (-len(g), g))
        listed = "; ".join("{" + _names(g) + "}" for g in groups)
        raise PreferenceError(
            f"the comparison graph is not connected: {n_groups} groups of items were never "
            f"compared with each other, directly or through other items ({listed}); their "
            "scores cannot be put on one scale, so the maximum-likelihood estimate does not "
            "exist. Compare items across the groups, or analyse each group on its own."
        )
    won = wins.sum(axis=1)
    lost = wins.sum(axis=0)
    never_won = sorted(items[i] for i in np.flatnonzero(won == 0))
    never_lost = sorted(items[i] for i in np.flatnonzero(lost == 0))
    if never_won or never_lost:
        parts = []
        if never_won:
            parts.append(f"{_names(never_won)} never won (score −∞)")
        if never_lost:
            parts.append(f"{_names(never_lost)} never lost (score +∞)")
        raise PreferenceError(
            f"the maximum-likelihood estimate does not exist: {' and '.join(parts)}. "
            "Collect more comparisons of these items, or leave them out."
        )
    n_parts, part = connected_components(wins > 0, directed=True, connection="strong")
    if n_parts > 1:
        # A part that no outside item ever beat: its gap to the rest is infinite.
        for p in range(n_parts):
            inside = part == p
            if not wins[np.ix_(~inside, inside)].any():
                top = sorted(items[i] for i in np.flatnonzero(inside))
                rest = sorted(items[i] for i in np.flatnonzero(~inside))
                raise PreferenceError(
                    "the maximum-likelihood estimate does not exist: items "
                    f"{{{_names(top)}}} won every comparison with the other items "
                    f"({{{_names(rest)}}}), so the gap between the two groups is infinite. "
                    "Collect comparisons in which the other items can win, or analyse the "
                    "groups apart."
                )
        raise AssertionError("a condensation of a finite graph has a source")


# --------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------


def log_likelihood(scores: np.ndarray, wins: np.ndarray) -> float:
    """Σ_ij wins[i, j] log P(i beats j)."""
    diff = scores[:, None] - scores[None, :]
    return float(-(wins * np.logaddexp(0.0, -diff)).sum())


def _gradient_and_information(scores: np.ndarray, wins: np.ndarray):
    n = wins + wins.T
    diff = scores[:, None] - scores[None, :]
    p = 1.0 / (1.0 + np.exp(-diff))  # p[i, j] = P(i beats j)
    gradient = wins.sum(axis=1) - (n * p).sum(axis=1)
    weight = n * p * (1.0 - p)
    information = np.diag(weight.sum(axis=1)) - weight
    return gradient, information


def _newton_polish(scores: np.ndarray, wins: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Newton steps (with step halving, the log-likelihood is concave) from ``scores``
    until every score equation holds to GRADIENT_TOL; returns the scores, the number of
    steps and the largest remaining |gradient|."""
    current = log_likelihood(scores, wins)
    for step in range(NEWTON_MAX_STEPS + 1):
        gradient, information = _gradient_and_information(scores, wins)
        worst = float(np.abs(gradient).max())
        if worst <= GRADIENT_TOL or step == NEWTON_MAX_STEPS:
            return scores, step, worst
        direction = np.linalg.pinv(information, hermitian=True) @ gradient
        size = 1.0
        while size > 1e-12:
            trial = scores + size * direction
            trial -= trial.mean()
            value = log_likelihood(trial, wins)
            if value >= current - 1e-12 * abs(current):
                break
            size /= 2
        scores, current = trial, value
    return scores, NEWTON_MAX_STEPS, worst  # pragma: no cover


def bradley_terry(comparisons: list[Comparison], confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """Bradley–Terry ML log-strengths (centred to mean 0) with Wald intervals, wins and
    comparisons per item, sorted by score (highest first). Raises PreferenceError when
    the estimate does not exist (see the module's docstring)."""
    if not comparisons:
        raise PreferenceError("there are no comparisons")
    items = sorted({c.item_a for c in comparisons} | {c.item_b for c in comparisons})
    index = {item: i for i, item in enumerate(items)}
    n_items = len(items)
    wins = np.zeros((n_items, n_items))
    pairs = []
    for c in comparisons:
        w, lo = index[c.winner], index[c.loser]
        wins[w, lo] += 1
        pairs.append((w, lo))
    check_estimable(items, wins)

    try:
        start = np.asarray(
            choix.mm_pairwise(n_items, pairs, max_iter=MM_MAX_ITER, tol=MM_TOL), dtype=float
        )
        mm_converged = True
    except RuntimeError:  # did not meet its tolerance: Newton takes over from the start
        start, mm_converged = np.zeros(n_items), False
    start = start - start.mean()
    scores, newton_steps, max_gradient = _newton_polish(start.copy(), wins)
    if max_gradient > 1e-6:
        raise PreferenceError(
            f"the fit did not converge (largest score-equation residual {max_gradient:.3g})"
        )
    _, information = _gradient_and_information(scores, wins)
    covariance = np.linalg.pinv(information, hermitian=True)
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    z = float(norm.ppf(0.5 + confidence / 2))

    order = sorted(range(n_items), key=lambda i: (-scores[i], items[i]))
    played = (wins + wins.T).sum(axis=1)
    records = [
        {
            "item": items[i],
            "score": float(scores[i]),
            "se": float(se[i]),
            "ci": [float(scores[i] - z * se[i]), float(scores[i] + z * se[i])],
            "wins": int(wins[i].sum()),
            "comparisons": int(played[i]),
        }
        for i in order
    ]
    return {
        "model": "Bradley–Terry",
        "score": (
            "maximum-likelihood log-strength centred to mean 0; P(a preferred to b) = "
            "1 / (1 + exp(-(score_a - score_b)))"
        ),
        "interval": (
            f"Wald {100 * confidence:g} % from the observed Fisher information of the "
            "centred fit (its Moore–Penrose inverse)"
        ),
        "confidence": confidence,
        "n_items": n_items,
        "n_comparisons": len(comparisons),
        "n_participants": len({c.participant for c in comparisons}),
        "log_likelihood": log_likelihood(scores, wins),
        "items": records,
        "covariance": {
            "items": [items[i] for i in order],
            "matrix": covariance[np.ix_(order, order)].tolist(),
        },
        "fit": {
            "method": "choix.mm_pairwise (Hunter 2004 MM), polished by Newton steps",
            "choix_version": choix_version(),
            "mm_converged": mm_converged,
            "newton_steps": newton_steps,
            "polish_change": float(np.abs(scores - start).max()),
            "max_score_equation_residual": max_gradient,
        },
    }


def choix_version() -> str:
    from importlib.metadata import version

    return version("choix")


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def format_text(result: dict) -> str:
    level = f"{100 * result['confidence']:g} %"
    width = max(len("item"), *(len(r["item"]) for r in result["items"]))
    lines = [
        f"Bradley–Terry scores: {result['n_comparisons']} comparisons of "
        f"{result['n_items']} items by {result['n_participants']} participants.",
        "Score: maximum-likelihood log-strength, centred to mean 0; a difference d between "
        "two items means the first is preferred with probability 1/(1+exp(-d)).",
        f"Intervals: Wald {level} from the observed Fisher information.",
        "",
        f"{'rank':>4}  {'item':<{width}}  {'score':>8}  {level + ' interval':>20}  "
        f"{'wins':>5} / comparisons",
    ]
    for rank, r in enumerate(result["items"], start=1):
        low, high = r["ci"]
        interval = f"[{low:.3f}, {high:.3f}]"
        lines.append(
            f"{rank:>4}  {r['item']:<{width}}  {r['score']:>8.4f}  {interval:>20}  "
            f"{r['wins']:>5} / {r['comparisons']}"
        )
    fit = result["fit"]
    lines += [
        "",
        f"Fit: {fit['method']} (choix {fit['choix_version']}); the polish took "
        f"{fit['newton_steps']} Newton steps and moved a score by at most "
        f"{fit['polish_change']:.2g}; largest score-equation residual "
        f"{fit['max_score_equation_residual']:.2g}.",
        f"Log-likelihood {result['log_likelihood']:.4f}.",
    ]
    return "\n".join(lines) + "\n"


def win_probability(score_a: float, score_b: float) -> float:
    """P(a preferred to b) under the model."""
    return 1.0 / (1.0 + math.exp(-(score_a - score_b)))
