"""Issue 14: the two-way bootstrap beside the participant bootstrap, and intervals that mean
little (too few participants, zero width) said so beside them on the dashboard and in the
exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.analysis import exports
from survey.analysis.caveats import MIN_PARTICIPANTS, interval_caveat
from survey.analysis.display import dashboard
from survey.analysis.results import study_analysis
from survey.statistics import bootstrap_two_way, measured
from tests.survey.analysis_helpers import judgements, make_study, take_part

pytestmark = pytest.mark.django_db

TOO_FEW = "too few to mean anything"


@pytest.fixture
def ada():
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def study(tmp_path, ada):
    return make_study(tmp_path, owner=ada)


def test_the_two_way_bootstrap_is_that_of_the_judgements_given(study):
    people = [take_part(study, i) for i in range(6)]
    analysis = study_analysis(study=study, n_boot=400, seed=5)
    rows = measured(judgements(people))
    for c in analysis.conditions:
        # In the order the analysis reads them (the draws number people and images so).
        mine = sorted(
            (r for r in rows if r.condition == c.condition_id),
            key=lambda r: (r.participant, r.image),
        )
        expected = bootstrap_two_way(
            [r.participant for r in mine],
            [r.image for r in mine],
            [r.truth == "ai" for r in mine],
            [r.fooled for r in mine],
            n_boot=400,
            seed=5,
        )
        assert c.bootstrap_two_way.fooling_rate == expected.fooling_rate
        assert c.bootstrap_two_way.n_images == len({r.image for r in mine})


def test_an_empty_condition_has_no_two_way_bootstrap(study):
    analysis = study_analysis(study=study)
    assert [c.bootstrap_two_way for c in analysis.conditions] == [None, None]


def test_few_participants_are_said_beside_every_interval_on_the_page_and_in_the_files(
    client, ada, study
):
    for i in range(4):  # two per condition
        take_part(study, i)
    client.force_login(ada)
    html = client.get(reverse("study_analysis", args=[study.pk])).content.decode()
    assert "bootstrap over participants and images" in html
    board = dashboard(study_analysis(study=study))
    for c in board.analysis.conditions:
        for name in ("fooling_rate_ci", "fooling_rate_boot", "fooling_rate_boot2", "d_prime"):
            text = board.fields[f"c{c.condition_id}-{name}"]
            assert "only 2 participants, fewer than 5" in text and TOO_FEW in text, name
            assert text in html
    table = list(csv.DictReader(io.StringIO(exports.tables_csv(board.analysis))))
    assert all(TOO_FEW in row["interval_note"] for row in table)
    assert all(row["fooling_rate_bootstrap_two_way_low"] for row in table)
    record = json.loads(exports.tables_json(board.analysis))
    assert all(TOO_FEW in c["interval_note"] for c in record["conditions"])
    assert record["conditions"][0]["bootstrap_two_way"]["n_images"] > 0


def test_enough_participants_print_their_intervals_plainly(study):
    for i in range(2 * MIN_PARTICIPANTS):
        take_part(study, i)
    board = dashboard(study_analysis(study=study, n_boot=300))
    for c in board.analysis.conditions:
        assert TOO_FEW not in board.fields[f"c{c.condition_id}-fooling_rate_ci"]
        assert board.fields[f"c{c.condition_id}-fooling_rate_ci"].endswith("%")
    rows = list(csv.DictReader(io.StringIO(exports.tables_csv(board.analysis))))
    assert [row["interval_note"] for row in rows] == ["", ""]


def test_a_zero_width_bootstrap_is_said_to_be_no_certainty(study):
    for i in range(2 * MIN_PARTICIPANTS):  # everybody answers "real" to everything
        take_part(study, i, rule=lambda i, trial: "real")
    board = dashboard(study_analysis(study=study, n_boot=300))
    for c in board.analysis.conditions:
        text = board.fields[f"c{c.condition_id}-fooling_rate_boot"]
        assert "zero width: every resample gave the same rate" in text
    rows = list(csv.DictReader(io.StringIO(exports.tables_csv(board.analysis))))
    assert all("bootstrap (participants) zero width" in row["interval_note"] for row in rows)


@pytest.mark.parametrize(
    ("n", "low", "high", "bootstrap", "expected"),
    [
        (4, 0.1, 0.3, False, "only 4 participants, fewer than 5"),
        (1, 0.1, 0.3, False, "only 1 participant, fewer than 5"),
        (5, 0.1, 0.3, True, ""),
        (5, 0.5, 0.5, False, ""),
        (5, 0.5, 0.5, True, "zero width"),
        (5, float("nan"), float("nan"), True, ""),
    ],
    ids=["four", "one", "enough", "Wilson never zero", "zero bootstrap", "undefined"],
)
def test_interval_caveats(n, low, high, bootstrap, expected):
    caveat = interval_caveat(n, low, high, bootstrap=bootstrap)
    assert caveat.startswith(expected) and bool(caveat) == bool(expected)


def test_a_study_too_large_for_the_two_way_bootstrap_on_the_page_says_so(study, monkeypatch):
    for i in range(2):
        take_part(study, i)
    monkeypatch.setattr("survey.analysis.results.TWO_WAY_MAX_JUDGEMENTS", 3)
    monkeypatch.setattr("survey.analysis.display.TWO_WAY_MAX_JUDGEMENTS", 3)
    analysis = study_analysis(study=study)
    assert analysis.two_way_skipped
    assert all(c.bootstrap_two_way is None and c.bootstrap for c in analysis.conditions)
    board = dashboard(analysis)
    c = analysis.conditions[0]
    assert board.fields[f"c{c.condition_id}-fooling_rate_boot2"] == (
        "not computed above 3 judgements"
    )
    assert json.loads(exports.tables_json(analysis))["bootstrap"]["two_way_computed"] is False


def test_the_latex_captions_give_both_bootstraps_and_the_note(study):
    for i in range(4):
        take_part(study, i)
    latex = exports.tables_latex(study_analysis(study=study, n_boot=300))
    assert latex.count("bootstrap intervals: over participants ") == 2
    assert latex.count("; over participants and images ") == 2
    assert latex.count("only 2 participants, fewer than 5") == 2


def test_within_subjects_the_two_way_bootstrap_takes_the_shared_real_photographs(tmp_path, ada):
    study = make_study(tmp_path, owner=ada, design="within")
    people = [take_part(study, i) for i in range(4)]
    analysis = study_analysis(study=study, n_boot=300, seed=2)
    rows = measured(judgements(people))
    for c in analysis.conditions:
        judged = {r.participant for r in rows if r.condition == c.condition_id}
        mine = sorted(
            (
                r
                for r in rows
                if r.condition == c.condition_id
                or (r.condition is None and r.participant in judged)
            ),
            key=lambda r: (r.participant, r.image),
        )
        expected = bootstrap_two_way(
            [r.participant for r in mine],
            [r.image for r in mine],
            [r.truth == "ai" for r in mine],
            [r.fooled for r in mine],
            n_boot=300,
            seed=2,
        )
        assert c.bootstrap_two_way == expected
        assert any(r.truth == "real" for r in mine) and any(r.truth == "ai" for r in mine)
