"""Measured display timing on the server: what a browser sends is read and checked
(missing, absurd, of the wrong type: refused value by value, never the answer), stored once
with the answer, and flagged by the rule (more than one frame off the target, or the page
hidden)."""

from __future__ import annotations

import json
import random
import re

import pytest
from django.urls import reverse

from survey.models import Trial, TrialDisplay
from survey.services.assignment import participant_start
from survey.services.display_timing import MAX_CHARS, display_flags, display_record
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

GOOD = {
    "target_frames": 12,
    "exposure_ms": 200.1,
    "frame_ms": 16.667,
    "device_pixel_ratio": 2,
    "window_width": 390,
    "window_height": 844,
    "image_width": 358.0,
    "image_height": 358.0,
    "hidden": False,
    "blurred": True,
    "left_fullscreen": False,
    "answered_early": False,
}
MEASURED, NOT_MEASURED, REFUSED = (
    TrialDisplay.Status.MEASURED,
    TrialDisplay.Status.NOT_MEASURED,
    TrialDisplay.Status.REFUSED,
)


# --- the rule, on hand-made values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("exposure", "frame", "hidden", "early", "missed", "flagged"),
    [
        (200.0, 16.667, False, False, False, False),  # on target
        (216.6, 16.667, False, False, False, False),  # within one frame (late)
        (183.4, 16.667, False, False, False, False),  # within one frame (early)
        (216.7, 16.667, False, False, True, True),  # more than one frame late
        (183.3, 16.667, False, False, True, True),  # more than one frame short
        (208.0, 6.944, False, False, True, True),  # one 60 Hz frame is > one 144 Hz frame
        (216.0, None, False, False, False, False),  # no refresh measured: a 60 Hz frame
        (217.0, None, False, False, True, True),
        (200.0, 16.667, True, False, False, True),  # on target but the page was hidden
        (50.0, 16.667, False, True, False, False),  # cut short by the answer: not the display
        (None, 16.667, False, False, False, False),  # nothing measured: cannot say it missed
    ],
)
def test_flags_by_the_one_frame_rule(exposure, frame, hidden, early, missed, flagged):
    flags = display_flags(
        target_ms=200, exposure_ms=exposure, frame_ms=frame, hidden=hidden, answered_early=early
    )
    assert (flags.missed_target, flags.flagged) == (missed, flagged)


def test_no_target_flags_only_a_hidden_page():
    assert not display_flags(target_ms=None, exposure_ms=5000, frame_ms=16, hidden=False).flagged
    assert display_flags(target_ms=None, exposure_ms=None, frame_ms=None, hidden=True).flagged


# --- reading what the browser sent ---------------------------------------------------------


def test_a_good_measurement_is_kept_as_sent():
    record = display_record(json.dumps(GOOD), target_ms=200)
    assert record["status"] == MEASURED and record["problems"] == ""
    assert {k: record[k] for k in GOOD} == {**GOOD, "device_pixel_ratio": 2.0}
    assert record["target_ms"] == 200 and not record["flagged"]


def test_nothing_sent_is_not_measured_and_flagged_where_the_exposure_is_limited():
    """Nothing says a 200 ms limit held: the trial is flagged (a study that drops flagged
    displays leaves it out); without a limit there is nothing to hold."""
    assert display_record(None, target_ms=200) == {
        "target_ms": 200,
        "problems": "",
        "status": NOT_MEASURED,
        "flagged": True,
    }
    assert not display_record(None, target_ms=None)["flagged"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "not a JSON object"),
        ("{not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('"a string"', "not a JSON object"),
        ("null", "not a JSON object"),
        ("{" + " " * MAX_CHARS + "}", f"longer than {MAX_CHARS} characters"),
    ],
)
def test_an_unreadable_measurement_is_refused_in_words(raw, problem):
    record = display_record(raw, target_ms=200)
    assert record["status"] == REFUSED and record["problems"] == problem
    assert record["flagged"]  # the 200 ms limit is not known to have held


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("exposure_ms", "200", "exposure_ms is not a number"),
        ("exposure_ms", -5, "exposure_ms -5 is outside [0, 3600000]"),
        ("exposure_ms", 1e12, "exposure_ms 1000000000000.0 is outside [0, 3600000]"),
        ("frame_ms", 0, "frame_ms 0 is outside [2, 250]"),
        ("frame_ms", True, "frame_ms is not a number"),
        ("device_pixel_ratio", [2], "device_pixel_ratio is not a number"),
        ("device_pixel_ratio", 1000, "device_pixel_ratio 1000 is outside [0.05, 20]"),
        ("window_width", 0, "window_width 0 is outside [1, 100000]"),
        ("window_height", {"h": 1}, "window_height is not a number"),
        ("image_width", -1, "image_width -1 is outside [0, 100000]"),
        ("target_frames", "12", "target_frames is not a number"),
        ("hidden", "no", "hidden is not true or false"),
        ("blurred", 0, "blurred is not true or false"),
    ],
)
def test_an_absurd_value_is_refused_alone(field, value, problem):
    record = display_record(json.dumps({**GOOD, field: value}), target_ms=200)
    assert record["status"] == MEASURED
    assert record[field] is None and record["problems"] == problem
    others = {k: v for k, v in GOOD.items() if k != field}
    assert {k: record[k] for k in others} == others


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(literal):
    raw = json.dumps(GOOD).replace('"exposure_ms": 200.1', f'"exposure_ms": {literal}')
    record = display_record(raw, target_ms=200)
    assert record["exposure_ms"] is None and record["problems"].startswith("exposure_ms")
    assert not record["missed_target"]


def test_missing_fields_are_null_and_unknown_ones_named():
    record = display_record(json.dumps({"frame_ms": 8.33, "colour": "red"}), target_ms=None)
    assert record["status"] == MEASURED and record["frame_ms"] == 8.33
    assert record["exposure_ms"] is None and record["hidden"] is None
    assert record["problems"] == "ignored: colour"


def test_whole_numbers_are_rounded_and_flags_come_from_the_server():
    sent = {**GOOD, "window_width": 390.6, "exposure_ms": 250.0, "flagged": False}
    record = display_record(json.dumps(sent), target_ms=200)
    assert record["window_width"] == 391
    assert record["missed_target"] and record["flagged"]  # the browser's own flag is ignored
    assert record["problems"] == "ignored: flagged"


# --- stored with the answer, through the answer endpoint -----------------------------------


@pytest.fixture
def taking(client, tmp_path):
    """A participant of a study showing each image 200 ms, in ``client``'s browser."""
    dataset = tiny_dataset("syn", per_category=10, size=32)
    study = open_study(
        [uploaded_run(dataset, tmp_path, name="warm")], images_per_participant=4, exposure_ms=200
    )
    started = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    public_id = started["Location"].split("/")[2]
    return study, public_id


def _post(client, public_id, position, **extra):
    return client.post(
        reverse("participant_answer", args=[public_id]),
        {"position": position, "answer": "real", "rt_ms": 600, **extra},
        HTTP_ACCEPT="application/json",
    )


@pytest.mark.django_db
def test_the_answer_is_stored_whatever_its_measurement(client, taking):
    study, public_id = taking
    sent = {
        1: {"display": json.dumps(GOOD)},
        2: {"display": json.dumps({**GOOD, "exposure_ms": "soon", "frame_ms": -1})},
        3: {"display": "<script>alert(1)</script>"},
        4: {},  # no measurement sent
    }
    for position, extra in sent.items():
        response = _post(client, public_id, position, **extra)
        assert response.status_code == 200, response.content
        assert response.json()["stored"] == {"position": position, "answer": "real"}
    trials = Trial.objects.filter(participant__public_id=public_id).select_related("display")
    displays = {t.position: t.display for t in trials}
    assert all(t.answer == "real" and t.rt_ms == 600 for t in trials)
    assert [displays[p].status for p in (1, 2, 3, 4)] == [MEASURED, MEASURED, REFUSED, NOT_MEASURED]
    assert displays[1].exposure_ms == 200.1 and displays[1].target_ms == 200
    assert displays[1].device_pixel_ratio == 2.0 and displays[1].blurred
    assert not displays[1].flagged
    assert displays[2].exposure_ms is None and displays[2].frame_ms is None
    assert displays[2].problems == ("exposure_ms is not a number; frame_ms -1 is outside [2, 250]")
    assert displays[2].window_width == 390  # the rest is kept
    assert displays[3].problems == "not a JSON object"
    assert displays[4].target_ms == 200 and displays[4].exposure_ms is None
    assert displays[3].flagged and displays[4].flagged


@pytest.mark.django_db
def test_a_plain_form_answer_to_a_limited_exposure_is_refused(client, taking):
    """Without the script the image would stay on screen until answered: a plain form's
    answer stores nothing (the page says JavaScript is needed)."""
    study, public_id = taking
    page_url = reverse("participant_page", args=[public_id])
    html = client.get(page_url, {"begin": "1"}).content.decode()
    assert "This study needs JavaScript: it shows each image for 200 ms and then hides it" in html
    assert re.search(r'<img id="stimulus"[^>]* src=', html) is None
    response = client.post(
        reverse("participant_answer", args=[public_id]), {"position": 1, "answer": "real"}
    )
    assert response.status_code == 302 and response["Location"] == page_url
    assert not Trial.objects.filter(participant__public_id=public_id, answer__isnull=False).exists()
    assert not TrialDisplay.objects.filter(trial__participant__public_id=public_id).exists()


@pytest.mark.django_db
def test_a_repeated_answer_keeps_the_first_measurement(client, taking):
    _, public_id = taking
    _post(client, public_id, 1, display=json.dumps(GOOD))
    again = _post(client, public_id, 1, display=json.dumps({**GOOD, "exposure_ms": 900}))
    assert again.status_code == 200
    display = TrialDisplay.objects.get(trial__participant__public_id=public_id)
    assert display.exposure_ms == 200.1 and not display.flagged


@pytest.mark.django_db
def test_a_late_or_hidden_display_is_flagged_when_stored(tmp_path):
    dataset = tiny_dataset("syn", per_category=10, size=32)
    study = open_study(
        [uploaded_run(dataset, tmp_path, name="warm")], images_per_participant=4, exposure_ms=100
    )
    participant = participant_start(study=study, rng=random.Random(0))
    sent = [
        {**GOOD, "exposure_ms": 133.4, "frame_ms": 16.667},  # two frames late
        {**GOOD, "exposure_ms": 100.0, "hidden": True},
        {**GOOD, "exposure_ms": 100.0},
    ]
    for position, measured in enumerate(sent, start=1):
        trial_answer(
            participant=participant,
            position=position,
            answer="ai",
            rt_ms=500,
            display=json.dumps(measured),
        )
    rows = TrialDisplay.objects.order_by("trial__position").values_list(
        "missed_target", "hidden", "flagged"
    )
    assert list(rows) == [(True, False, True), (False, True, True), (False, False, False)]
