"""A mixed model at a separation: three participants' 12 paired judgements in which every
image was always or never chosen (a draw the paired browser test met by chance). lme4's glmer
fits a degenerate optimum there (intercept −10.88, image SD 46.1: a "typical image" is never
fooled although 6 of the 12 pairs fooled), and its Wald test rejects 0.5. The platform must
fit the same numbers but not let them carry the verdict."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from survey.analysis.model_display import _rows
from survey.bundle import python_script, r_script
from survey.inference import (
    SDT_SEPARATION_SD,
    SEPARATION_SD,
    Row,
    analyse_rows,
    fooling_model,
    format_text,
)

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


# --------------------------------------------------------------------------------------------
# The bundle's scripts apply the same rule
# --------------------------------------------------------------------------------------------


def separated_rows() -> list[Row]:
    """Two conditions × 30 images (15 real, 15 AI), each judged by 3 of 12 participants and
    always or never fooled: 48 of 90 judgements fooled in each condition. glmer and the
    platform fit an image SD near 53 and an intercept whose Wald test rejects 0.5
    (p < 1e-10); the exact binomial TOST (δ = 0.1) is inconclusive, p = 0.119."""
    out = []
    for c in "AB":
        for i in range(30):
            truth = "real" if i % 2 == 0 else "ai"
            fooled = (7 * i) % 30 < 16
            answer = ("ai" if truth == "real" else "real") if fooled else truth
            for k in range(3):
                out.append(Row(f"{c}p{(i + 4 * k) % 12}", f"{c}img{i}", c, truth, answer))
    return out


def _bundle_scripts(rows: list[Row], folder) -> list[tuple[list[str], dict]]:
    """(command, its JSON's mixed_models) of the bundle's analysis.py and analysis.R (as
    survey.bundle writes them, δ = 0.1, α = 0.05) run on ``rows``."""
    plan = SimpleNamespace(equivalence_margin=0.1, alpha=0.05)
    (folder / "analysis.py").write_text(python_script(plan))
    (folder / "analysis.R").write_text(r_script(plan))
    data = folder / "judgements.csv"
    lines = ["participant,image,condition,truth,answer"]
    lines += [f"{r.participant},{r.image},{r.condition},{r.truth},{r.answer}" for r in rows]
    data.write_text("\n".join(lines) + "\n")
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript with lme4 is needed: install it with scripts/ensure-r.sh.")
    out = []
    for command in ([sys.executable, "analysis.py"], [rscript, "analysis.R"]):
        run = subprocess.run(
            [*command, str(data)], cwd=folder, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stderr[-3000:]
        out.append((command, json.loads(run.stdout)["mixed_models"]))
    return out


def test_the_bundles_scripts_give_the_pages_verdict_at_a_separation(tmp_path):
    """The scripts once let a converged model carry the verdict whatever its SDs ("different
    from chance" here); like the page, they must hand it to the exact binomial TOST."""
    rows = separated_rows()
    page = {c.condition: c for c in analyse_rows(rows, margin=0.1).conditions}
    for c in page.values():
        assert c.glmm.converged and c.glmm.image_sd > SEPARATION_SD
        assert c.mixed_tost.verdict == "inconclusive"  # no model verdict
        assert c.verdict == c.tost.verdict == "inconclusive"
        assert c.tost.p == pytest.approx(0.1188, abs=1e-4)

    for command, mixed in _bundle_scripts(rows, tmp_path):
        assert mixed["margin"] == 0.1
        for m in mixed["conditions"]:
            reference = page[m["condition"]]
            assert m["glmm"]["image_sd"] > SEPARATION_SD, command
            assert m["verdict"] == reference.verdict == "inconclusive", command
            assert m["mixed_tost"]["verdict"] == "inconclusive", command
            assert m["tost"]["p"] == pytest.approx(reference.tost.p, rel=1e-9), command
            assert "separation" in m["model_problem"], command
            assert f"image SD is {m['glmm']['image_sd']:.3g}" in m["model_problem"], command


# --------------------------------------------------------------------------------------------
# The signal-detection model
# --------------------------------------------------------------------------------------------


def one_answer_rows() -> list[Row]:
    """12 participants, each answering Real always (odd ones) or never (even ones), on 8
    real photographs and 8 AI images: d′ is 0 in every participant, and the probit model's
    participants' criterion SD runs off (about 29; lme4-like estimate d′ 2.2 with SE ~6000)."""
    return [
        Row(f"p{p}", f"i{(i + p) % 10}", "x", truth, "real" if p % 2 else "ai")
        for p in range(12)
        for i in range(8)
        for truth in ("real", "ai")
    ]


def test_a_signal_detection_separation_is_said_and_its_d_prime_not_read(tmp_path):
    result = analyse_rows(one_answer_rows(), margin=0.1)
    (condition,) = result.conditions
    s = condition.sdt
    assert s.d_prime is not None and s.participant_sd > SDT_SEPARATION_SD  # as fitted
    assert s.problem is not None
    assert "participants' criterion SD is" in s.problem and "separation" in s.problem
    assert "d′ and c say nothing" in s.problem
    assert s.warnings[0] == s.problem
    text = format_text(result)
    assert "(not to be read: separation)" in text and s.problem in text
    groups = {key: rows for key, _, rows in _rows(result.conditions, "95 %", paired=False)}
    by_label = {row.label: row for row in groups["sdt"]}
    assert by_label["d′ [95 %]"].cells[0].endswith("(separation: not to be read)")
    assert by_label["c [95 %]"].cells[0].endswith("(separation: not to be read)")
    (status,) = by_label["Model"].statuses
    assert not status.ok and status.text == s.problem
    # The bundle's scripts say the same (glmer's criterion SD runs off as well).
    for command, mixed in _bundle_scripts(one_answer_rows(), tmp_path):
        (script,) = mixed["conditions"]
        assert script["sdt"]["participant_sd"] > SDT_SEPARATION_SD, command
        assert "participants' criterion SD is" in script["sdt"]["problem"], command
        assert "d′ and c say nothing" in script["sdt"]["problem"], command
        assert script["sdt"]["warnings"][0] == script["sdt"]["problem"], command


def test_an_ordinary_signal_detection_fit_has_no_problem():
    from tests.survey.test_glmm import simulate

    (condition,) = analyse_rows(simulate("sdt-a", 11)).conditions
    assert condition.sdt.problem is None
    assert not any("separation" in w for w in condition.sdt.warnings)


def test_a_separated_study_gives_the_planner_no_default_sds(monkeypatch):
    """The planner's default SDs come from the researcher's closed studies: one whose model
    converged at an image SD of 46 (separation) is no planning value and is skipped."""
    from survey import power_defaults
    from survey.analysis import exports

    monkeypatch.setattr(exports, "inference_rows", lambda study: rows())
    assert power_defaults._study_estimates(object()) == []
