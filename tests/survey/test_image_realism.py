"""The per-image realism against lme4: each image's random effect (the conditional mode) and
its conditional SD, from ``survey.inference`` per condition and, for real photographs shared
by every condition (within subjects), from the joint model, compared with glmer's
``ranef(condVar = TRUE)`` on a simulated within-subjects study; and the rates built from
them (P(judged Real) for a typical participant)."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from survey.analysis.image_realism import realism_by_stimulus
from survey.analysis.mixed import MixedModels
from survey.analysis.results import ImageRow
from survey.inference import Row, analyse_rows

R_SCRIPT = Path(__file__).parent / "r" / "ranef_reference.R"


def simulate(seed: int = 5) -> list[Row]:
    """40 participants; each judges 6 AI images of condition a, 6 of condition b (pools of
    30 scenes each) and 12 real photographs shared by both (a pool of 30); image effects
    with SD 0.6 on the probit scale, participants' criteria with SD 0.3."""
    rng = np.random.default_rng(seed)
    effect = {}
    rows = []
    for p in range(40):
        c = rng.normal(0.0, 0.3)
        for condition, truth, count in (("a", "ai", 6), ("b", "ai", 6), (None, "real", 12)):
            for scene in rng.choice(30, count, replace=False):
                key = (condition, int(scene))
                effect.setdefault(key, rng.normal(0.0, 0.6))
                t = 0.5 if truth == "real" else -0.5
                said_real = rng.random() < stats.norm.cdf(c + 0.4 * t + effect[key])
                image = str({"a": 0, "b": 100, None: 200}[condition] + scene)  # a scene id
                rows.append(Row(f"p{p}", image, condition, truth, "real" if said_real else "ai"))
    return rows


@pytest.fixture(scope="module")
def rows():
    return simulate()


@pytest.fixture(scope="module")
def glmer(rows, tmp_path_factory):
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript is not installed: install R and lme4 with scripts/ensure-r.sh.")
    folder = tmp_path_factory.mktemp("ranef")
    data, results = folder / "judgements.csv", folder / "ranef.csv"
    with data.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["participant", "image", "condition", "truth", "answer"])
        for r in rows:
            writer.writerow([r.participant, r.image, r.condition or "", r.truth, r.answer])
    run = subprocess.run(
        [rscript, str(R_SCRIPT), str(data), str(results)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out: dict = {}
    with results.open(newline="") as stream:
        for record in csv.DictReader(stream):
            out.setdefault(record["key"], {})[record["stim"]] = record
    return out


@pytest.fixture(scope="module")
def result(rows):
    return analyse_rows(rows)


def _close(images, reference, intercept: float) -> None:
    assert len(images) == len(reference)
    for i in images:
        r = reference[f"{i.image}:{i.truth}"]
        assert abs(i.effect - float(r["mode"])) < 0.02, i.image
        sd = (i.effect_ci[1] - i.effect_ci[0]) / (2 * 1.959964)
        assert abs(sd / float(r["sd"]) - 1) < 0.05, i.image
        assert i.fooling_rate == pytest.approx(special.expit(intercept + i.effect))


def test_each_conditions_image_effects_agree_with_ranef(result, glmer):
    for c in result.conditions:
        reference = glmer[c.condition]
        intercept = float(next(iter(reference.values()))["intercept"])
        assert abs(c.glmm.intercept - intercept) < 0.02
        _close(c.images, reference, c.glmm.intercept)
        # Realism: P(judged Real) = the fooling rate of an AI image, 1 − it for a real one.
        for i in c.images:
            expected = i.fooling_rate if i.truth == "ai" else 1 - i.fooling_rate
            assert i.soft_label == pytest.approx(expected)


def test_shared_photographs_take_their_realism_from_the_joint_model(result, glmer):
    joint = result.joint
    shared = joint.shared_images
    assert {i.truth for i in shared} == {"real"} and len(shared) == 30
    reference = {k: v for k, v in glmer["joint"].items() if k.endswith(":real")}
    level = joint.coefficients["(Intercept)"][0]
    level += joint.coefficients["condition shared real photographs"][0]
    first = next(iter(reference.values()))
    assert abs(level - (float(first["intercept"]) + float(first["shared"]))) < 0.02
    _close(shared, reference, level)


def test_the_page_maps_the_models_images_to_its_stimuli(result):
    """Code compared with itself: each stimulus gets its own image's realism, ranked within
    its condition and truth; the shared photographs (key None) the joint model's."""
    models = MixedModels(True, "", result, 0.05, 0.05)
    a = {i.image: i for i in result.conditions[0].images if i.truth == "ai"}
    shared = {i.image: i for i in result.joint.shared_images}

    def row(stimulus: int, scene: int, is_real: bool) -> ImageRow:
        return ImageRow(stimulus, scene, f"scene {scene}", is_real, 1, 0, 0.0, [0, 1], None)

    page_rows = {
        1: [row(1000 + k, k, False) for k in range(30)],
        None: [row(2000 + k, 200 + k, True) for k in range(30)],
    }
    realism = realism_by_stimulus(page_rows, models, {1: "a", 2: "b"})
    assert len(realism) == 60
    for k in range(30):
        assert realism[1000 + k].p_real == pytest.approx(a[str(k)].fooling_rate)
        assert realism[2000 + k].p_real == pytest.approx(1 - shared[str(200 + k)].fooling_rate)
    for group in (range(1000, 1030), range(2000, 2030)):
        ranked = sorted(group, key=lambda s: realism[s].rank)
        assert [realism[s].rank for s in ranked] == list(range(1, 31))
        p = [realism[s].p_real for s in ranked]
        assert p == sorted(p, reverse=True)
