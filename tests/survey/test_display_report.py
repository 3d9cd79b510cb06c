"""The display report: its numbers from hand-made rows (counted here by hand), then the
page, the CSV of every trial and the JSON summary of a study whose answers carried known
measurements."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.analysis.display_report import COLUMNS, DisplayRow, display_summary
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run


def row(participant=1, position=1, **values) -> DisplayRow:
    base = {
        "participant": participant,
        "position": position,
        "kind": "main",
        "status": "measured",
        "target_ms": 200,
        "target_frames": 12,
        "exposure_ms": 200.0,
        "frame_ms": 16.667,
        "device_pixel_ratio": 1.0,
        "window_width": 1280,
        "window_height": 800,
        "image_width": 512.0,
        "image_height": 512.0,
        "hidden": False,
        "blurred": False,
        "left_fullscreen": False,
        "answered_early": False,
        "missed_target": False,
        "flagged": False,
        "problems": "",
    }
    return DisplayRow(**{**base, **values})


def test_the_summary_counts_rates_ratios_sizes_errors_and_flags():
    rows = [
        row(1, 1),
        row(1, 2, exposure_ms=216.0),  # within a frame
        row(1, 3, exposure_ms=250.0, missed_target=True, flagged=True),  # 3 frames long
        row(2, 1, frame_ms=8.333, exposure_ms=200.0, device_pixel_ratio=2.0, window_width=390),
        row(2, 2, frame_ms=8.333, exposure_ms=183.0, device_pixel_ratio=2.0, window_width=390),
        row(2, 3, frame_ms=8.333, hidden=True, flagged=True, device_pixel_ratio=2.0, blurred=True),
        row(3, 1, status="not_measured", **dict.fromkeys(("exposure_ms", "frame_ms"), None)),
        row(3, 2, exposure_ms=120.0, answered_early=True, device_pixel_ratio=1.25),
        row(3, 3, status="refused", problems="not a JSON object", exposure_ms=None),
    ]
    s = display_summary(rows)
    assert (s["trials"], s["participants"], s["measured"]) == (9, 3, 7)
    assert (s["not_measured"], s["refused"], s["with_problems"]) == (1, 1, 1)
    assert s["refresh_rates_hz"] == [
        {"value": 60, "trials": 4, "participants": 2},
        {"value": 120, "trials": 3, "participants": 1},
    ]
    assert s["device_pixel_ratios"] == [
        {"value": 1.0, "trials": 3, "participants": 1},
        {"value": 1.25, "trials": 1, "participants": 1},
        {"value": 2.0, "trials": 3, "participants": 1},
    ]
    assert s["window_widths"] == [
        {"value": "under 600 px (phones)", "trials": 2, "participants": 1},
        {"value": "1024–1439 px", "trials": 5, "participants": 3},
    ]
    # Errors: 0, 16, 50 (60 Hz), 0, −17, 0 (120 Hz); the early answer and the unmeasured left out.
    errors = s["timing_error_ms"]
    assert errors["n"] == 6 and errors["min"] == -17.0 and errors["max"] == 50.0
    assert errors["median"] == 0.0 and errors["mean"] == pytest.approx(49 / 6)
    assert s["timing_error_frames"] == [
        {"value": "more than 2 frames short", "trials": 1, "participants": 1},  # −17 / 8.333
        {"value": "within 1 frame", "trials": 4, "participants": 2},
        {"value": "2 to 5 frames long", "trials": 1, "participants": 1},  # 50 / 16.667 = 3
    ]
    assert s["flags"] == {
        "flagged": 2,
        "missed_target": 1,
        "hidden": 1,
        "missed_target_and_hidden": 0,
        "participants_flagged": 2,
        "participants_hidden": 1,
    }
    assert s["focus"] == {"blurred": 1, "participants_blurred": 1, "left_fullscreen": 0}
    assert s["answered_early"] == 1


def test_an_empty_study_has_an_empty_summary():
    s = display_summary([])
    assert s["trials"] == 0 and s["refresh_rates_hz"] == [] and s["timing_error_ms"]["n"] == 0


SENT = [
    {"exposure_ms": 200.0, "frame_ms": 16.667, "device_pixel_ratio": 1, "window_width": 1280},
    {"exposure_ms": 250.0, "frame_ms": 16.667, "device_pixel_ratio": 1, "window_width": 1280},
    {"exposure_ms": 200.0, "frame_ms": 16.667, "hidden": True, "blurred": True},
    {"exposure_ms": 200.0, "frame_ms": 6.944, "device_pixel_ratio": 3, "window_width": 412},
]


@pytest.fixture
def reported(client, tmp_path):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    study = open_study(
        [uploaded_run(dataset, tmp_path, name="warm", owner=ada)],
        owner=ada,
        images_per_participant=4,
        exposure_ms=200,
        drop_flagged_displays=True,
    )
    participant = participant_start(study=study, rng=random.Random(0))
    for position, display in enumerate(SENT, start=1):
        trial_answer(
            participant=participant,
            position=position,
            answer="real",
            rt_ms=500,
            display=json.dumps(display),
        )
    client.force_login(ada)
    return study


@pytest.mark.django_db
def test_the_report_page_and_its_downloads(client, reported):
    study = reported
    page = client.get(reverse("study_display_report", args=[study.pk]))
    assert page.status_code == 200
    report = page.context["r"]
    assert (report["trials"], report["measured"], report["flags"]["flagged"]) == (4, 4, 2)
    assert report["dropped_from_analysis"] == 2
    assert [r["value"] for r in report["refresh_rates_hz"]] == [60, 144]
    html = page.content.decode()
    assert '<strong data-f="dropped">2</strong>' in html
    analysis = client.get(reverse("study_analysis", args=[study.pk])).content.decode()
    assert reverse("study_display_report", args=[study.pk]) in analysis
    assert "left out (the researcher&#x27;s choice): 2 trials so far" in analysis

    response = client.get(reverse("export_display_csv", args=[study.pk]))
    assert response["Content-Disposition"].endswith('display.csv"')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 4
    assert [r["error_ms"] for r in rows] == ["0.0", "50.0", "0.0", "0.0"]
    assert [r["flagged"] for r in rows] == ["0", "1", "1", "0"]
    assert rows[3]["refresh_hz"] == "144.0092" and rows[3]["device_pixel_ratio"] == "3.0"

    summary = json.loads(client.get(reverse("export_display_json", args=[study.pk])).content)
    assert summary["flags"]["flagged"] == 2 and summary["exposure_ms"] == 200
    assert summary == json.loads(json.dumps(report))


@pytest.mark.django_db
def test_the_report_is_for_those_who_may_see_the_study(client, reported):
    other = researcher_create(username="bob", password="a-long-Passphrase-2")
    client.force_login(other)
    for name in ("study_display_report", "export_display_csv", "export_display_json"):
        assert client.get(reverse(name, args=[reported.pk])).status_code == 404
