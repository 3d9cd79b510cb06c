"""The LaTeX tables of a paired real-vs-fake study (survey.protocols): per condition the
fooling rate P(chose the fake as the real photograph) with its Wilson, bootstrap (over
participants; over participants and images) and mixed-model intervals, then one row per
condition. Needs ``\\usepackage{booktabs}``; part of ``tables.tex``
(:func:`survey.analysis.exports.tables_latex`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from studyplatform.words import counted
from survey.analysis.results import ConditionResult, StudyAnalysis
from survey.statistics import latex_escape

MIXED_FORMULA = (
    "$\\mathit{fooled} \\sim 1 + (1 \\mid \\mathit{participant}) + (1 \\mid \\mathit{image})$"
)


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _pct(value: float | None) -> str:
    return f"{100 * value:.2f}\\,\\%" if _ok(value) else "---"


def _interval(bounds: Sequence[float | None] | None) -> str:
    if not bounds or not all(_ok(b) for b in bounds):
        return "---"
    return f"{100 * bounds[0]:.2f}--{100 * bounds[1]:.2f}\\,\\%"


def _boot(boot) -> tuple[float | None, list[float] | None]:
    if boot is None:
        return None, None
    interval = boot.fooling_rate.interval
    return boot.fooling_rate.estimate, [interval.low, interval.high]


def _model_cell(model: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """(rate, interval, note) of a condition's mixed model (survey.inference's record)."""
    if model is None:
        return "---", "---", "not fitted"
    glmm = model["glmm"]
    note = ""
    if glmm.get("intercept") is None:
        note = "could not be fitted"
    elif not glmm.get("converged"):
        note = "did not converge"
    elif glmm.get("singular"):
        note = "singular fit"
    return _pct(glmm.get("fooling_rate")), _interval(glmm.get("fooling_rate_ci")), note


def paired_condition_table(
    c: ConditionResult,
    confidence: float,
    model: Mapping[str, Any] | None,
    label: str,
    participants: int,
    interval_note: str = "",
) -> str:
    """One condition's table; ``interval_note``: why its intervals mean little (the
    analysis page's words, :func:`survey.analysis.exports.interval_note`), "" if they don't."""
    level = f"{100 * confidence:g}\\,\\%"
    pairs = c.pairs
    rate, interval, note = _model_cell(model)
    over, over_ci = _boot(c.bootstrap)
    both, both_ci = _boot(c.bootstrap_two_way)
    rows = [
        ("Pooled (Wilson interval)", _pct(pairs["rate"]), _interval(pairs["wilson"])),
        ("Bootstrap over participants", _pct(over), _interval(over_ci)),
        ("Bootstrap over participants and images", _pct(both), _interval(both_ci)),
        (
            "Mixed model, typical participant and image" + (f" ({note})" if note else ""),
            rate,
            interval,
        ),
    ]
    caption = (
        "Paired real vs fake, 2AFC: the real photograph and its colourisation by "
        f"{latex_escape(c.label)} side by side, ``Which one is the real photograph?'' "
        f"({counted(pairs['n'], 'pair')} by {counted(participants, 'participant')}; the fake "
        f"chosen in {pairs['fooled']}). Fooling rate: P(chose the fake); 50\\,\\% is chance. "
        f"Mixed model: {MIXED_FORMULA}, logit, expit of the intercept with its Wald interval."
    )
    if interval_note:
        caption += f" (Intervals: {latex_escape(interval_note)}.)"
    body = [
        "\\begin{table}[htbp]",
        "\\centering",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        "\\begin{tabular}{lrr}",
        "\\toprule",
        f"Estimate & Fooling rate & {level} interval \\\\",
        "\\midrule",
        *(f"{name} & {value} & {bounds} \\\\" for name, value, bounds in rows),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(body) + "\n"


def paired_conditions_table(
    analysis: StudyAnalysis, models: Mapping[str, Mapping[str, Any]], label: str
) -> str:
    level = f"{100 * analysis.confidence:g}\\,\\%"
    body = [
        "\\begin{table}[htbp]",
        "\\centering",
        "\\caption{Paired real vs fake, 2AFC, per condition: pairs, pairs in which the fake "
        "was chosen as the real photograph, the fooling rate P(chose the fake) with its "
        f"Wilson and two-way bootstrap intervals, and the mixed model's rate ({level}).}}",
        f"\\label{{{label}}}",
        "\\begin{tabular}{lrrrlll}",
        "\\toprule",
        "Condition & Pairs & Fake chosen & Fooling rate & Wilson & Bootstrap & Mixed model \\\\",
        "\\midrule",
    ]
    for c in analysis.conditions:
        if c.pairs is None:
            continue
        rate, interval, _ = _model_cell(models.get(c.label))
        body.append(
            f"{latex_escape(c.label)} & {c.pairs['n']} & {c.pairs['fooled']} & "
            f"{_pct(c.pairs['rate'])} & {_interval(c.pairs['wilson'])} & "
            f"{_interval(_boot(c.bootstrap_two_way)[1])} & {rate} ({interval}) \\\\"
        )
    body += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(body) + "\n"
