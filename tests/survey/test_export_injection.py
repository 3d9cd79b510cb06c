"""Exports cannot inject: a study name with a line break writes no live LaTeX, and text
cells that start like a spreadsheet formula (from names, labels, uploaded file names) are
written as text, in every CSV download (the test split's manifest.csv: tests/worker)."""

from __future__ import annotations

import csv
import io

import pytest

from survey.analysis import exports
from survey.analysis.results import study_analysis
from survey.models import Condition, Study
from survey.preference import read_comparisons
from survey.preference_protocol import judgements_csv, scores_csv
from tests.survey.analysis_helpers import make_study, take_part
from worker.models import DatasetImage

pytestmark = pytest.mark.django_db

HOSTILE_NAME = "Pilot\n\\input{/etc/passwd}\r\n\\write18{rm -rf ~}"


@pytest.fixture
def hostile(tmp_path):
    """A study whose name, condition label and scene file names were written by an
    attacker (as a study made before names were validated, or through the services)."""
    study = make_study(tmp_path)
    Study.objects.filter(pk=study.pk).update(name=HOSTILE_NAME)
    condition = Condition.objects.filter(study=study).order_by("pk").first()
    condition.label = '=HYPERLINK("http://evil","x")'
    condition.save()
    for image in DatasetImage.objects.filter(pk__in=study.stimuli.values("scene_id")):
        image.original_name = f"@SUM(1+1)*cmd|' /C calc'!A{image.pk}.jpg"
        image.save()
    for i in range(4):
        take_part(study, i)
    study.refresh_from_db()
    return study


def _live_lines(tex: str) -> list[str]:
    """Lines a LaTeX run would execute that mention the payload."""
    return [
        line
        for line in tex.splitlines()
        if not line.lstrip().startswith("%") and ("\\input" in line or "\\write18" in line)
    ]


def test_a_line_break_in_a_study_name_writes_no_live_latex(hostile):
    analysis = study_analysis(study=hostile)
    for tex in (exports.tables_latex(analysis), exports.runs_latex(analysis)):
        assert _live_lines(tex) == []
        assert "% Study" in tex and "\\input{/etc/passwd}" in tex  # kept, inside the comment


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_no_csv_cell_starts_like_a_formula(hostile):
    analysis = study_analysis(study=hostile)
    judgements = "".join(exports.judgements_csv_chunks(study=hostile))
    for text in (exports.tables_csv(analysis), judgements):
        cells = _cells(text)
        assert cells
        assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
        assert not [c for c in cells if c.startswith("-") and not _is_number(c)]
    assert '\'=HYPERLINK("http://evil","x")' in _cells(judgements)
    assert any(c.startswith("'@SUM(1+1)*cmd") for c in _cells(judgements))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


HOSTILE_LABEL = '=HYPERLINK("http://evil","x")'


def test_the_preference_downloads_write_labels_as_text():
    """preferences.csv and bradley-terry.csv (written apart from the other exports) escape
    a run label that starts like a formula, and leave the numbers as numbers."""
    record = {
        "participant": 7,
        "item_a": HOSTILE_LABEL,
        "item_b": "+cool",
        "winner": HOSTILE_LABEL,
        "left": "+cool",
        "right": HOSTILE_LABEL,
        "chosen_side": "right",
        "rt_ms": 640,
        "position": 3,
        "scene": 12,
    }
    judgements = judgements_csv([record])
    (row,) = csv.DictReader(io.StringIO(judgements))
    assert row["item_a"] == row["winner"] == row["right"] == "'" + HOSTILE_LABEL
    assert row["item_b"] == row["left"] == "'+cool"
    assert (row["participant"], row["rt_ms"], row["scene"]) == ("7", "640", "12")
    # manage.py analyse_preferences reads the labels back as they were, not escaped.
    (read,) = read_comparisons(io.StringIO(judgements))
    assert (read.item_a, read.item_b, read.winner) == (HOSTILE_LABEL, "+cool", HOSTILE_LABEL)

    item = {"score": -0.5, "se": 0.25, "ci": (-1.0, 0.0), "wins": 1, "comparisons": 2}
    scores = scores_csv(
        {"bradley_terry": {"items": [{**item, "item": HOSTILE_LABEL}, {**item, "item": "@x"}]}}
    )
    rows = list(csv.DictReader(io.StringIO(scores)))
    assert [r["item"] for r in rows] == ["'" + HOSTILE_LABEL, "'@x"]
    assert (rows[0]["score"], rows[0]["ci_low"]) == ("-0.500000", "-1.000000")
    for text in (judgements, scores):
        assert not [c for c in _cells(text) if c[:1] in ("=", "+", "@", "\t", "\r")]
        assert not [c for c in _cells(text) if c.startswith("-") and not _is_number(c)]
