"""A preference study's reproduction bundle: its analysis.py and analysis.R recompute the
Bradley–Terry scores from data/preferences.csv alone and give tables/bradley-terry.json's
numbers (scores, standard errors, Wald intervals at the study's 1 − α: to 1e-6; wins and
comparisons exactly), read back run labels the platform wrote with a leading apostrophe,
and print the reason, not numbers, when the maximum-likelihood scores do not exist."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from survey.bundle import study_bundle
from survey.models import Condition, Study
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.test_preference_protocol import (  # noqa: F401 (fixture)
    LEFT,
    RANK,
    RIGHT,
    _answer_by_hand,
    preference_study,
    runs,
    trials_of,
)

pytestmark = pytest.mark.django_db

#: Labels a spreadsheet would run as formulas: preferences.csv writes them with a leading
#: apostrophe, and the scripts must read them back as the platform's labels.
FORMULA_LABELS = {"LabelWarmRun": "=SUM(A1:A2)", "LabelSmallRun": "-small run"}
TOLERANCE = 1e-6


def _rscript() -> str:
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript is needed: install R with scripts/ensure-r.sh.")
    return rscript


def _bundle(study: Study, folder: Path) -> Path:
    with study_bundle(study=study) as archive, zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
    return folder / f"study-{study.pk}"


def _run(command: list[str], cwd: Path) -> dict:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _commands(root: Path, elsewhere: Path) -> list[tuple[str, list[str], Path]]:
    """Each script three ways: in the bundle's folder (its default data/judgements.csv),
    from another folder by its path (the default found beside the script), and given the
    path of data/preferences.csv itself."""
    commands = []
    for name, program in (("analysis.py", sys.executable), ("analysis.R", _rscript())):
        script = str(root / name)
        commands += [
            (f"{name} in its folder", [program, name], root),
            (f"{name} from elsewhere", [program, script], elsewhere),
            (
                f"{name} given preferences.csv",
                [program, script, str(root / "data" / "preferences.csv")],
                elsewhere,
            ),
        ]
    return commands


def assert_same_fit(got: dict, want: dict) -> None:
    """The script's "bradley_terry" against tables/bradley-terry.json's, in the same order
    (highest score first)."""
    assert [i["item"] for i in got["items"]] == [i["item"] for i in want["items"]]
    for mine, theirs in zip(got["items"], want["items"], strict=True):
        assert set(mine) == set(theirs) == {"item", "score", "se", "ci", "wins", "comparisons"}
        assert mine["score"] == pytest.approx(theirs["score"], abs=TOLERANCE), mine["item"]
        assert mine["se"] == pytest.approx(theirs["se"], abs=TOLERANCE), mine["item"]
        assert mine["ci"] == pytest.approx(theirs["ci"], abs=TOLERANCE), mine["item"]
        assert (mine["wins"], mine["comparisons"]) == (theirs["wins"], theirs["comparisons"])
    for key in ("confidence", "n_items", "n_comparisons", "n_participants"):
        assert got[key] == want[key], key
    assert got["log_likelihood"] == pytest.approx(want["log_likelihood"], abs=TOLERANCE)
    assert got["covariance"]["items"] == want["covariance"]["items"]
    assert got["covariance"]["matrix"] == [
        pytest.approx(row, abs=TOLERANCE) for row in want["covariance"]["matrix"]
    ]


def test_both_scripts_recompute_the_bradley_terry_scores_of_bradley_terry_json(
    runs,  # noqa: F811
    tmp_path,
):
    study = preference_study(runs, alpha=0.1)  # intervals at the study's 90 %
    _answer_by_hand(study)
    for old, new in FORMULA_LABELS.items():
        Condition.objects.filter(study=study, label=old).update(label=new)
    root = _bundle(study, tmp_path / "bundle")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tables = json.loads((root / "tables" / "bradley-terry.json").read_text())
    want = tables["bradley_terry"]
    assert tables["error"] == "" and want["confidence"] == pytest.approx(0.9)
    assert [i["item"] for i in want["items"]] == [
        FORMULA_LABELS.get(label, label) for label in RANK
    ]
    written = (root / "data" / "preferences.csv").read_text()
    assert "'=SUM(A1:A2)" in written and "'-small run" in written  # written escaped
    for what, command, cwd in _commands(root, elsewhere):
        out = _run(command, cwd)
        assert out["protocol"] == "preference", what
        assert out["error"] == "", what
        assert out["n_judgements"] == tables["n_judgements"] == 24, what
        assert out["n_participants"] == tables["n_participants"], what
        assert_same_fit(out["bradley_terry"], want)
    readme = (root / "README.txt").read_text()
    assert "recompute the scores from data/preferences.csv" in readme
    # Its opening says nothing of fooling rates or lme4, which a preference has not.
    opening = readme.split("This study's protocol is preference")[0]
    assert "judgements.csv alone" not in opening and "lme4" not in opening


def test_a_study_with_a_run_that_never_lost_gets_the_reason_not_numbers(
    runs,  # noqa: F811
    tmp_path,
):
    study = preference_study(runs)
    for _ in range(2):  # the first-ranked run wins every pair it is in
        participant = participant_start(study=study)
        for t in trials_of(participant):
            a, b = t.stimulus.condition.label, t.partner.condition.label
            winner = min((a, b), key=RANK.__getitem__)
            side = t.fake_side if winner == a else (RIGHT if t.fake_side == LEFT else LEFT)
            trial_answer(participant=participant, position=t.position, answer=side, rt_ms=600)
    root = _bundle(study, tmp_path)
    tables = json.loads((root / "tables" / "bradley-terry.json").read_text())
    assert tables["bradley_terry"] is None
    assert "'LabelWarmRun' never lost (score +∞)" in tables["error"]
    for what, command, cwd in _commands(root, tmp_path):
        out = _run(command, cwd)
        assert out["bradley_terry"] is None, what
        assert out["error"] == tables["error"], what
        assert out["n_judgements"] == tables["n_judgements"], what


def test_an_empty_preference_study_says_there_are_no_comparisons(runs, tmp_path):  # noqa: F811
    """No answer yet: judgements.csv has no rows to name the protocol; preferences.csv
    beside it (a header only) says it is a preference study's."""
    study = preference_study(runs)
    root = _bundle(study, tmp_path)
    tables = json.loads((root / "tables" / "bradley-terry.json").read_text())
    assert tables["error"] == "there are no comparisons"
    assert len((root / "data" / "judgements.csv").read_text().splitlines()) == 1
    for what, command, cwd in _commands(root, tmp_path):
        out = _run(command, cwd)
        assert out["protocol"] == "preference" and out["n_judgements"] == 0, what
        assert out["bradley_terry"] is None and out["error"] == tables["error"], what
