"""A mixed model at a separation: three participants' 12 paired judgements in which every
image was always or never chosen (a draw the paired browser test met by chance). lme4's glmer
fits a degenerate optimum there (intercept −10.88, image SD 46.1: a "typical image" is never
fooled although 6 of the 12 pairs fooled), and its Wald test rejects 0.5. The platform must
fit the same numbers but not let them carry the verdict."""

from __future__ import annotations

import pytest

from survey.inference import SEPARATION_SD, Row, analyse_rows, fooling_model

#: (participant, image, fooled)
JUDGEMENTS = [
    (79, 115, 1), (79, 109, 0), (79, 119, 0), (79, 113, 0),
    (80, 118, 1), (80, 117, 1), (80, 112, 0), (80, 110, 0),
    (81, 117, 1), (81, 118, 1), (81, 115, 1), (81, 113, 0),
]  # fmt: skip
#: glmer(fooled ~ 1 + (1|participant) + (1|image), binomial) on JUDGEMENTS: R 4.2.2, lme4
#: 1.1.31 (boundary (singular) fit).
GLMER = {"intercept": -10.87783, "image_sd": 46.112, "participant_sd": 0.0}


def rows() -> list[Row]:
    return [
        Row(str(p), str(i), "warm", "ai", "real" if fooled else "ai") for p, i, fooled in JUDGEMENTS
    ]


def test_the_degenerate_fit_is_lme4s():
    model, _ = fooling_model(rows())
    assert model.intercept == pytest.approx(GLMER["intercept"], abs=0.02)
    assert model.image_sd == pytest.approx(GLMER["image_sd"], rel=0.01)
    assert model.participant_sd == pytest.approx(0.0, abs=1e-3)
    assert model.image_sd > SEPARATION_SD


def test_a_separation_does_not_carry_the_verdict():
    (condition,) = analyse_rows(rows(), paired=True).conditions
    assert condition.fooling_rate == 0.5
    assert condition.verdict == "inconclusive"  # the exact binomial TOST of 6 of 12
    assert condition.verdict == condition.tost.verdict
    assert "image SD is 46.1 on the logit scale" in condition.verdict_reason
    assert "separation" in condition.verdict_reason
    assert "exact binomial test" in condition.verdict_reason
