"""manage.py analyse_judgements: a long-format file re-analysed with the mixed models and
equivalence tests; the platform's own judgements.csv works as is; bad input exits with 2."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from survey.analysis import exports
from survey.models import Study
from tests.survey.analysis_helpers import make_study, take_part
from tests.survey.test_glmm import simulate

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["participant", "image", "condition", "truth", "answer"]


def _write(path: Path, rows, header=COLUMNS) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _call(*args) -> str:
    out = io.StringIO()
    call_command("analyse_judgements", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def two_conditions(tmp_path_factory) -> Path:
    rows = simulate("joint-f", 5)
    rows = [r for r in rows if not r.condition.startswith("c-")]
    path = tmp_path_factory.mktemp("judgements") / "two.csv"
    return _write(
        path,
        [(r.participant, r.image, r.condition, r.truth, r.answer, 512) for r in rows],
        header=[*COLUMNS, "rt_ms"],
    )


@pytest.fixture(scope="module")
def two_conditions_json(two_conditions):
    return json.loads(_call(two_conditions, "--format", "json"))


def test_json_has_the_issues_fields(two_conditions, two_conditions_json):
    result = two_conditions_json
    with two_conditions.open() as stream:
        rows = list(csv.DictReader(stream))
    assert [c["condition"] for c in result["conditions"]] == ["a-joint-f", "b-joint-f"]
    for c in result["conditions"]:
        mine = [r for r in rows if r["condition"] == c["condition"]]
        fooled = sum(r["truth"] != r["answer"] for r in mine)
        assert c["n_judgements"] == len(mine) == 45 * 24
        assert c["n_participants"] == 45
        assert c["n_images"] == len({(r["image"], r["truth"]) for r in mine})
        assert c["fooling_rate"] == pytest.approx(fooled / len(mine))
        glmm = c["glmm"]
        for key in ("intercept", "intercept_se", "participant_sd", "image_sd", "fooling_rate"):
            assert isinstance(glmm[key], float)
        low, high = glmm["fooling_rate_ci"]
        assert low < glmm["fooling_rate"] < high
        assert isinstance(glmm["converged"], bool) and isinstance(glmm["warnings"], list)
        assert c["tost"]["margin"] == 0.05 and isinstance(c["tost"]["equivalent"], bool)
        assert 0 <= c["tost"]["p"] <= 1
        assert c["verdict"] in (
            "equivalent to chance within ±5 percentage points",
            "different from chance",
            "inconclusive",
        )
        assert c["verdict_reason"]
        assert {"d_prime", "criterion", "d_prime_ci"} <= set(c["sdt"])
        assert c["ai_judged_real_rate"] == pytest.approx(
            sum(r["answer"] == "real" for r in mine if r["truth"] == "ai")
            / sum(r["truth"] == "ai" for r in mine)
        )
        # One soft label per image, P(judged Real).
        assert len(c["images"]) == c["n_images"]
        assert all(0 < i["soft_label"] < 1 for i in c["images"])
    (contrast,) = result["contrasts"]
    assert (contrast["a"], contrast["b"]) == ("a-joint-f", "b-joint-f")
    low, high = contrast["interval"]
    assert low < contrast["estimate"] < high
    assert contrast["p_holm"] == pytest.approx(contrast["p"])  # one contrast: Holm = raw


def test_text_output_names_the_models_and_the_verdicts(two_conditions):
    out = _call(two_conditions, "--margin", "0.1")
    assert "fooled ~ 1 + (1 | participant) + (1 | image)" in out
    assert "said_real ~ truth + (1 + truth | participant) + (1 | image), probit" in out
    assert "exact binomial TOST" in out and "VERDICT:" in out
    assert "a-joint-f − b-joint-f" in out and "Holm p" in out
    assert "±0.1 around 0.5" in out


def test_the_margin_changes_the_equivalence_test(two_conditions, two_conditions_json):
    wide = json.loads(_call(two_conditions, "--format", "json", "--margin", "0.2"))
    for narrow_c, wide_c in zip(two_conditions_json["conditions"], wide["conditions"]):
        assert wide_c["tost"]["margin"] == 0.2
        assert wide_c["tost"]["p"] < narrow_c["tost"]["p"]


def test_a_singular_fit_is_said_in_words(tmp_path):
    rows = simulate("sdt-c", 3)  # image SD 0
    path = _write(
        tmp_path / "flat.csv",
        [(r.participant, r.image, r.condition, r.truth, r.answer) for r in rows],
    )
    result = json.loads(_call(path, "--format", "json"))
    glmm = result["conditions"][0]["glmm"]
    if glmm["singular"]:
        assert any("singular fit" in w for w in glmm["warnings"])
    assert result["contrasts"] == []
    text = _call(path)
    assert ("SINGULAR FIT" in text) == glmm["singular"]


@pytest.mark.parametrize(
    "header, row, message",
    [
        (
            ["participant", "image", "truth", "answer"],
            ["p1", "i1", "real", "ai"],
            "'condition' column",
        ),
        (COLUMNS, ["p1", "i1", "x", "fake", "ai"], "line 2: unknown truth value 'fake'"),
        (COLUMNS, ["p1", "i1", "x", "real", "yes"], "line 2: unknown answer value 'yes'"),
        (COLUMNS, ["p1", "i1", "", "ai", "ai"], "line 2: the condition is empty for an AI image"),
        (COLUMNS, ["", "i1", "x", "ai", "ai"], "line 2: the participant is empty"),
        (
            COLUMNS,
            ["p1", "i1", "x", "ai", "ai"],
            "condition 'x' has no judgements of real photographs",
        ),
    ],
)
def test_bad_files_are_refused_naming_what_is_wrong(tmp_path, header, row, message):
    path = _write(tmp_path / "bad.csv", [row], header=header)
    with pytest.raises(CommandError, match=message) as caught:
        _call(path)
    assert caught.value.returncode == 2


def test_a_condition_without_counted_judgements_is_named(tmp_path):
    rows = [["p1", "i1", "kept", "real", "ai", 1], ["p1", "i2", "kept", "ai", "ai", 1]]
    rows += [["p2", "i1", "gone", "real", "ai", 0]]
    path = _write(tmp_path / "c.csv", rows, header=[*COLUMNS, "counted"])
    with pytest.raises(CommandError, match="condition 'gone' has no counted judgements"):
        _call(path)


def test_bad_options_and_missing_files_exit_with_status_2(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "1",
        "SECRET_KEY": "analyse-judgements-tests-only-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path}/unused.sqlite3",
        "VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "analyse_judgements", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = manage(str(tmp_path / "nowhere.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = _write(tmp_path / "bad.csv", [["p", "i", "c", "real", "maybe"]])
    unknown = manage(str(bad))
    assert unknown.returncode == 2 and "unknown answer value 'maybe'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    margin = manage(str(bad), "--margin", "0.7")
    assert margin.returncode == 2 and "--margin" in margin.stderr


# ---------------------------------------------------------------------------------------
# The platform's own export
# ---------------------------------------------------------------------------------------


def _coin(i: int, trial) -> str:
    return random.Random(1000 * i + trial.position).choice(["real", "ai"])


@pytest.mark.django_db
@pytest.mark.parametrize("design", [Study.Design.BETWEEN, Study.Design.WITHIN])
def test_the_platforms_judgements_csv_works_as_is(tmp_path, design):
    study = make_study(tmp_path, design=design)
    for i in range(10):
        take_part(study, i, rule=_coin)
    take_part(study, 10, rule=_coin, attention="real")  # fails the check: excluded
    text = "".join(exports.judgements_csv_chunks(study=study))
    path = tmp_path / "judgements.csv"
    path.write_text(text)
    exported = list(csv.DictReader(io.StringIO(text)))
    counted = [r for r in exported if r["counted"] == "1"]
    assert len(counted) < len(exported)  # practice, attention and excluded rows are there

    result = json.loads(_call(path, "--format", "json"))
    shared = [r for r in counted if r["condition"] == ""]
    assert sorted(c["condition"] for c in result["conditions"]) == ["cool & co_1", "warm"]
    for c in result["conditions"]:
        mine = [r for r in counted if r["condition"] == c["condition"]] + shared
        assert c["n_judgements"] == len(mine)
        assert c["fooling_rate"] == pytest.approx(
            sum(r["truth"] != r["answer"] for r in mine) / len(mine)
        )
        assert c["n_participants"] == len({r["participant"] for r in mine})
        # Whatever the fit, it is stated: a number with converged, or words.
        glmm = c["glmm"]
        assert glmm["intercept"] is not None or glmm["warnings"]
    assert len(result["contrasts"]) == 1
    if design == Study.Design.WITHIN:
        assert shared and any("shared" in note for note in result["notes"])


def test_images_format_is_one_soft_label_per_image(two_conditions, two_conditions_json):
    text = _call(two_conditions, "--format", "images")
    records = list(csv.DictReader(io.StringIO(text)))
    expected = sum(c["n_images"] for c in two_conditions_json["conditions"])
    assert len(records) == expected
    for r in records:
        p = float(r["fooling_rate"])
        assert float(r["fooling_rate_low"]) < p < float(r["fooling_rate_high"])
        assert float(r["soft_label"]) == pytest.approx(p if r["truth"] == "ai" else 1 - p)
        assert float(r["effect_low"]) < float(r["effect"]) < float(r["effect_high"])
        assert 0 <= int(r["fooled"]) <= int(r["n"])


def test_one_participant_reads_as_one_and_an_unfitted_model_is_not_called_unconverged(
    tmp_path,
):
    """One participant's judgements: no participant variance to fit, so the models are not
    fitted; the text says so (not "NOT CONVERGED"), and counts agree with their nouns."""
    rows = [["p1", f"r{i}", "only", "real", "real" if i % 2 else "ai"] for i in range(4)]
    rows += [["p1", f"a{i}", "only", "ai", "ai" if i % 3 else "real"] for i in range(4)]
    text = _call(_write(tmp_path / "one.csv", rows))
    assert "8 judgements, 1 participant, 8 images" in text
    fitted = json.loads(_call(tmp_path / "one.csv", "--format", "json"))["conditions"][0]
    if fitted["glmm"]["intercept"] is None:
        assert "NOT FITTED" in text and "NOT CONVERGED" not in text
