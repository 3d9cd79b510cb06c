"""tables.tex of a paired real-vs-fake study (survey.analysis.paired_latex): the fooling
rate P(chose the fake) with its Wilson, bootstrap and mixed-model intervals, per condition
and across them; no 2×2 table, no d′."""

from __future__ import annotations

import json

import pytest

from survey.analysis.exports import tables_json, tables_latex
from survey.analysis.results import study_analysis
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.test_paired import LEFT, RIGHT, study, trials_of  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _answer(study, chosen_fakes) -> None:  # noqa: F811
    for wanted in chosen_fakes:
        participant = participant_start(study=study)
        fooled = 0
        for t in trials_of(participant):
            real = RIGHT if t.fake_side == LEFT else LEFT
            choose_fake = t.kind == "main" and fooled < wanted
            fooled += choose_fake
            answer = t.fake_side if choose_fake else real
            trial_answer(participant=participant, position=t.position, answer=answer, rt_ms=800)


def _tex_pct(x: float) -> str:
    return f"{100 * x:.2f}"


def test_a_paired_conditions_latex_has_the_fooling_rate_and_every_interval(study):  # noqa: F811
    """4 participants choose the fake in 1, 2, 4 and 5 of 6 test pairs: 12 of 24 (50 %)."""
    _answer(study, (1, 2, 4, 5))
    analysis = study_analysis(study=study, n_boot=500)
    tex = tables_latex(analysis)
    (c,) = analysis.conditions
    assert c.pairs["rate"] == 0.5
    mixed = json.loads(tables_json(analysis))["mixed_models"]
    (model,) = mixed["conditions"]
    glmm = model["glmm"]
    assert "Paired real vs fake, 2AFC" in tex and "P(chose the fake)" in tex
    assert "24 pairs by 4 participants; the fake chosen in 12" in tex
    assert f"Pooled (Wilson interval) & 50.00\\,\\% & {_tex_pct(c.pairs['wilson'][0])}--" in tex
    boot = c.bootstrap.fooling_rate.interval
    assert (
        f"Bootstrap over participants & 50.00\\,\\% & {_tex_pct(boot.low)}--"
        f"{_tex_pct(boot.high)}\\,\\%" in tex
    )
    two = c.bootstrap_two_way.fooling_rate.interval
    assert f"{_tex_pct(two.low)}--{_tex_pct(two.high)}\\,\\%" in tex
    low, high = glmm["fooling_rate_ci"]
    assert f"{_tex_pct(glmm['fooling_rate'])}\\,\\% & {_tex_pct(low)}--{_tex_pct(high)}" in tex
    assert "fooled} \\sim 1 + (1 \\mid" in tex
    assert "LabelWarmCondition & 24 & 12 & 50.00\\,\\%" in tex  # the table of conditions
    assert "Judged Real" not in tex and "no judgements of both kinds" not in tex
    assert tex.count("\\begin{table}") == tex.count("\\end{table}") == 2
    assert "d'" not in tex.replace("no d'", "")


def test_a_paired_study_without_pairs_says_so_in_its_latex(study):  # noqa: F811
    tex = tables_latex(study_analysis(study=study, n_boot=100))
    assert "LabelWarmCondition: no pairs counted yet" in tex
    assert "\\begin{table}" not in tex
