"""HYPE_time's staircase (survey.hype), pure: hand-made answer sequences and the exposures,
reversals and thresholds they must give (worked out by hand from the 3-up/1-down rule on
the ladder 100, 200, …, 1000 ms starting at 500 ms)."""

from __future__ import annotations

import math

import pytest

from survey.hype import (
    LADDER_MS,
    START_MS,
    Threshold,
    condition_threshold,
    mask_jpeg,
    next_exposure,
    participant_threshold,
    staircase,
)

R, W = True, False


def test_the_ladder_runs_from_100_to_1000_ms_in_steps_of_100_and_starts_in_the_middle():
    assert LADDER_MS == (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)
    assert START_MS == 500 and next_exposure([]) == 500


def test_three_right_in_a_row_shorten_one_wrong_lengthens():
    s = staircase([R, R, R, R, R, R, W, R, R, W])
    assert s.exposures == (500, 500, 500, 400, 400, 400, 300, 400, 400, 400)
    assert s.next_ms == 500


def test_two_right_then_a_wrong_start_the_count_again():
    # R R W: up at once; the two rights before count for nothing.
    s = staircase([R, R, W, R, R, R])
    assert s.exposures == (500, 500, 500, 600, 600, 600)
    assert s.next_ms == 500


def test_the_bounds_hold_the_exposure():
    assert staircase([R] * 15).exposures[-3:] == (100, 100, 100)
    assert staircase([R] * 15).next_ms == 100
    assert staircase([W] * 7).exposures == (500, 600, 700, 800, 900, 1000, 1000)
    assert staircase([W] * 7).next_ms == 1000


def test_reversals_are_turns_of_direction_at_the_trial_that_made_them():
    # steps: down at 2, up at 3 (reversal), up at 4, down at 7 (reversal), up at 8 (rev.)
    s = staircase([R, R, R, W, W, R, R, R, W])
    assert s.exposures == (500, 500, 500, 400, 500, 600, 600, 600, 500)
    assert s.reversals == (3, 7, 8)


def test_the_threshold_is_the_mean_exposure_at_the_last_six_reversals():
    # Alternate: three right (down) and one wrong (up) from 500: reversals at every turn.
    answers = [R, R, R, W] * 5
    s = staircase(answers)
    t = participant_threshold(s.exposures, answers)
    # exposures at the turns: the wrongs (at 400) and the third rights (at 500)
    turns = [s.exposures[i] for i in s.reversals]
    assert len(s.reversals) == 9 and set(turns) == {400, 500}
    assert t.threshold_ms == pytest.approx(sum(turns[-6:]) / 6) == 450
    assert t.converged and t.reversals == 9 and t.trials == 20


def test_a_staircase_that_never_turns_reports_where_it_ended():
    always_right = [R] * 15
    t = participant_threshold(staircase(always_right).exposures, always_right)
    assert t == Threshold(100.0, 0, 15, False)
    never = [W] * 8
    t = participant_threshold(staircase(never).exposures, never)
    assert t == Threshold(1000.0, 0, 8, False)
    assert participant_threshold([], []) is None


def test_the_threshold_reads_the_stored_exposures():
    # The exposures as stored (here another start) are what the threshold averages.
    answers = [R, R, R, W, R, R, R, W]
    stored = staircase(answers, start_ms=800).exposures
    assert stored == (800, 800, 800, 700, 800, 800, 800, 700)
    # reversals at the first wrong (700), the second run's third right (800), the
    # second wrong (700)
    assert participant_threshold(stored, answers).threshold_ms == pytest.approx(2200 / 3)


def test_a_condition_is_the_mean_of_its_participants_with_a_bootstrap_interval():
    ts = [Threshold(v, 6, 40, True) for v in (200.0, 300.0, 400.0, 500.0)]
    c = condition_threshold(ts, n_boot=4000, seed=1)
    assert c.mean_ms == 350 and c.participants == 4 and c.not_converged == 0
    assert 200 <= c.low_ms < 350 < c.high_ms <= 500
    # A bootstrap of means of 4 values: the interval is narrower than the range.
    assert c.high_ms - c.low_ms < 300
    one = condition_threshold([ts[0]])
    assert one.mean_ms == 200 and math.isnan(one.low_ms)
    assert condition_threshold([]) is None


def test_masks_depend_on_their_seed_only():
    assert mask_jpeg("p:1:1") == mask_jpeg("p:1:1")
    assert mask_jpeg("p:1:1") != mask_jpeg("p:1:2")
    assert mask_jpeg("p:1:1")[:3] == b"\xff\xd8\xff"
