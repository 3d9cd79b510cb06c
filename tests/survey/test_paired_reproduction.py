"""The reproduction bundle of a paired real-vs-fake study: both scripts, run on the
extracted bundle of a simulated paired study, fit ``fooled ~ 1 + (1|participant) +
(1|image)`` and report the fooling rate P(chose the fake), no d′; their numbers equal the
page's (tables.json, the dashboard's printed fields) to the tolerances of
test_reproduction: analysis.py carries the platform's engine (code compared with itself,
1e-6), analysis.R is lme4's glmer (intercept 0.02 logit, its SE 5 %, random-effect SDs
0.05); the pooled numbers to 1e-9."""

from __future__ import annotations

import json
import math
import random
import sys

import numpy as np
import pytest
from django.urls import reverse

from survey.analysis.display import pct
from survey.models import Study, Trial
from survey.services.assignment import participant_start
from survey.services.studies import study_open
from survey.services.trials import trial_answer
from tests.survey.test_reproduction import (  # noqa: F401 (the ada fixture)
    GLMM_KEYS,
    _by,
    _close,
    _draft,
    _extract,
    _rscript,
    _run,
    _runs,
    ada,
)

pytestmark = pytest.mark.django_db
LEFT, RIGHT = Trial.Side.LEFT, Trial.Side.RIGHT


def _simulate(study: Study, people: int, seed: int = 3) -> None:
    """Each participant's tendency to choose the fake and each fake's realism drawn once
    (crossed random effects, SDs 0.8 and 0.6); the warm run's fakes chosen more often.
    Practice pairs answered at random, vigilance pairs caught."""
    rng = np.random.default_rng(seed)
    realism: dict[int, float] = {}
    for i in range(people):
        participant = participant_start(study=study, rng=random.Random(i))
        bias = rng.normal(-0.3, 0.8)
        trials = participant.trials.select_related("stimulus__condition").order_by("position")
        for t in trials:
            real = RIGHT if t.fake_side == LEFT else LEFT
            if t.kind == "main":
                s = t.stimulus
                realism.setdefault(s.pk, rng.normal(0, 0.6))
                shift = 0.6 if s.condition.label == "warm" else -0.2
                eta = bias + realism[s.pk] + shift
                fake = rng.random() < 1 / (1 + math.exp(-eta))
            else:
                fake = t.kind == "practice" and rng.random() < 0.5
            answer = t.fake_side if fake else real
            trial_answer(participant=participant, position=t.position, answer=answer, rt_ms=900)


def test_both_scripts_fit_the_paired_model_and_give_the_pages_numbers(client, ada, tmp_path):  # noqa: F811
    draft = _draft(
        _runs(tmp_path, ada, 40),
        ada,
        protocol=Study.Protocol.PAIRED,
        images_per_participant=16,
        practice_trials=1,
        attention_checks=2,
        exposure_ms=1000,
    )
    study = study_open(study=draft)
    _simulate(study, 60)
    root = _extract(client, study, tmp_path)
    assert "fooled ~ 1 + (1|participant) + (1|image); there is" in (root / "README.txt").read_text()
    assert "\\begin{table}" in (root / "tables" / "tables.tex").read_text()
    page = json.loads((root / "tables" / "tables.json").read_text())
    mixed_page = page["mixed_models"]
    assert mixed_page["computed"], mixed_page
    fields = json.loads(client.get(reverse("study_analysis_json", args=[study.pk])).content)[
        "fields"
    ]
    pages = _by(page["conditions"], "label")
    env_python = _run([sys.executable, "analysis.py"], root)
    env_r = _run([_rscript(), "analysis.R"], root)
    for result in (env_python, env_r):
        assert result["protocol"] == "paired" and "P(chose the fake" in result["statistic"]
        assert any("d'" in note for note in result["not_fitted"])
        mine = _by(result["conditions"], "label")
        assert set(mine) == set(pages) == {"warm", "cool & co_1"}
        for label, c in pages.items():
            p, q = mine[label]["pairs"], c["pairs"]
            assert mine[label]["cells"] == c["cells"]
            assert (p["n"], p["fooled"]) == (q["n"], q["fooled"])
            _close(p["rate"], q["rate"])
            for a, b in zip(p["wilson"], q["wilson"], strict=True):
                _close(a, b)
            assert fields[f"c{c['condition_id']}-n"] == str(p["n"])
            assert fields[f"c{c['condition_id']}-fooling_rate"] == pct(p["rate"])
        models = _by(result["mixed_models"]["conditions"], "condition")
        for label, reference in _by(mixed_page["conditions"], "condition").items():
            m = models[label]
            assert m["sdt"] is None and reference["sdt"] is None
            assert m["real_judged_ai_rate"] is None
            for key in ("n_judgements", "n_participants", "n_images", "fooled"):
                assert m[key] == reference[key], key
            _close(m["fooling_rate"], reference["fooling_rate"])
            for key in ("p", "p_two_sided"):
                _close(m["tost"][key], reference["tost"][key])
            assert m["glmm"]["converged"] and not m["glmm"]["singular"], m["glmm"]

    # analysis.py: the platform's engine (code compared with itself).
    models = _by(env_python["mixed_models"]["conditions"], "condition")
    for label, reference in _by(mixed_page["conditions"], "condition").items():
        for key in GLMM_KEYS:
            _close(models[label]["glmm"][key], reference["glmm"][key], 1e-6)
        assert models[label]["verdict"] == reference["verdict"]
    for mine, ref in zip(
        env_python["mixed_models"]["contrasts"], mixed_page["contrasts"], strict=True
    ):
        for key in ("estimate", "se", "p", "p_holm"):
            _close(mine[key], ref[key], 1e-6)

    # analysis.R: lme4's glmer, within the issue's tolerances.
    models = _by(env_r["mixed_models"]["conditions"], "condition")
    for label, reference in _by(mixed_page["conditions"], "condition").items():
        g, ref = models[label]["glmm"], reference["glmm"]
        print(label, {k: (round(g[k], 5), round(ref[k], 5)) for k in GLMM_KEYS}, "(R, page)")
        assert abs(g["intercept"] - ref["intercept"]) < 0.02, (label, g, ref)
        assert abs(g["intercept_se"] / ref["intercept_se"] - 1) < 0.05, (label, g, ref)
        assert abs(g["participant_sd"] - ref["participant_sd"]) < 0.05, (label, g, ref)
        assert abs(g["image_sd"] - ref["image_sd"]) < 0.05, (label, g, ref)
        assert abs(g["fooling_rate"] - ref["fooling_rate"]) < 0.005
    (mine,), (ref,) = env_r["mixed_models"]["contrasts"], mixed_page["contrasts"]
    assert abs(mine["estimate"] - ref["estimate"]) < 0.02
    assert abs(mine["se"] / ref["se"] - 1) < 0.05
