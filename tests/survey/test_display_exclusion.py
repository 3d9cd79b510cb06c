"""A study may drop the trials whose display was flagged (``drop_flagged_displays``, off by
default): the tables (from the stored tallies and from the trials), the long-format
``counted`` column and the rule's words follow; off, flagged trials count as any other.
The expected cells are counted here from what the test answered."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from survey.analysis.counts import condition_cells, study_counts
from survey.analysis.exclusion import dropped_displays, exclusion_rule_text
from survey.analysis.exports import JUDGEMENT_COLUMNS, judgement_rows
from survey.analysis.results import study_analysis
from survey.models import Trial
from survey.services.assignment import participant_start
from survey.services.errors import StudyError
from survey.services.studies import study_update
from survey.services.trials import trial_answer
from tests.survey.analysis_helpers import make_study

pytestmark = pytest.mark.django_db

ON_TIME = {"exposure_ms": 200.0, "frame_ms": 16.667, "hidden": False}
LATE = {"exposure_ms": 250.0, "frame_ms": 16.667, "hidden": False}  # three frames late
HIDDEN = {"exposure_ms": 200.0, "frame_ms": 16.667, "hidden": True}


def take(study, i: int, stop_after: int | None = None) -> set[int]:
    """Participant ``i`` answers every trial (main ones by a pattern; or the first
    ``stop_after``); some main trials' displays are late or hidden. Returns the ids of the
    flagged main trials."""
    participant = participant_start(study=study, rng=random.Random(i))
    flagged = set()
    trials = participant.trials.select_related("stimulus").order_by("position")
    for trial in trials[:stop_after]:
        display = ON_TIME
        if trial.kind == "main" and (i + trial.position) % 3 == 0:
            display = LATE if i % 2 else HIDDEN
            flagged.add(trial.pk)
        answer = {"attention": "ai", "practice": "real"}.get(trial.kind)
        answer = answer or ("ai" if (i + trial.position) % 2 else "real")
        trial_answer(
            participant=participant,
            position=trial.position,
            answer=answer,
            rt_ms=500,
            display=json.dumps(display),
        )
    return flagged


def expected(study, dropped: set[int], unfinished: bool = False) -> dict:
    cells: dict = {}
    trials = Trial.objects.filter(participant__study=study, kind="main", answer__isnull=False)
    if not unfinished:
        trials = trials.filter(participant__completed_at__isnull=False)
    for t in trials.select_related("stimulus"):
        if t.pk in dropped:
            continue
        truth = "real" if t.stimulus.is_real else "ai"
        cells.setdefault(t.stimulus.condition_id, Counter())[f"{truth}_{t.answer}"] += 1
    names = ("real_real", "real_ai", "ai_real", "ai_ai")
    return {c: tuple(counter[n] for n in names) for c, counter in cells.items()}


@pytest.mark.parametrize("drop", [False, True])
def test_flagged_trials_are_dropped_only_when_the_study_says_so(tmp_path, drop):
    study = make_study(tmp_path, exposure_ms=200, drop_flagged_displays=drop)
    flagged = set().union(*(take(study, i) for i in range(6)))
    assert flagged  # the pattern flags some
    flagged |= take(study, 6, stop_after=5)  # unfinished: counted on request only
    want = expected(study, flagged if drop else set())
    assert condition_cells(study=study) == want
    assert study_counts(study=study).tables == want
    with_unfinished = expected(study, flagged if drop else set(), unfinished=True)
    assert with_unfinished != want
    assert study_counts(study=study, include_unfinished=True).tables == with_unfinished
    assert condition_cells(study=study, include_unfinished=True) == with_unfinished
    analysis = study_analysis(study=study, n_boot=50)
    assert analysis.judgements == sum(sum(cells) for cells in want.values())
    finished = Trial.objects.filter(pk__in=flagged, participant__completed_at__isnull=False)
    assert dropped_displays(study=study) == (finished.count() if drop else 0)
    rule = " ".join(exclusion_rule_text(study=study))
    assert ("display was flagged" in rule) == drop
    if drop:
        assert f"{finished.count()} trials so far" in rule
        assert analysis.exclusion_rule == exclusion_rule_text(study=study)
    counted_at = JUDGEMENT_COLUMNS.index("counted")
    counted = sum(row[counted_at] for row in judgement_rows(study=study))
    assert counted == analysis.judgements


def test_the_choice_is_frozen_when_the_study_opens(tmp_path):
    study = make_study(tmp_path, exposure_ms=200)
    assert not study.drop_flagged_displays  # the default: existing numbers do not change
    with pytest.raises(StudyError, match="drop_flagged_displays cannot change"):
        study_update(study=study, fields={"drop_flagged_displays": True})
