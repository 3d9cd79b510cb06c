"""Counts and words that agree: the studies list counts each participant once (not once
per condition) and as the monitor and the analysis do; counts take the noun's number."""

from __future__ import annotations

import socket
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from studyplatform.researchers import researcher_create
from survey.analysis.results import study_analysis
from survey.selectors import study_monitor
from survey.services.stimuli import scene_shortfall
from tests.survey.analysis_helpers import make_study, take_part, withdraw
from worker.services.claims import ClaimFields, stale_reason


@pytest.mark.django_db
def test_the_studies_list_counts_each_participant_once_as_the_monitor_does(client, tmp_path):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    study = make_study(tmp_path, owner=ada)  # two conditions
    finished = [take_part(study, i) for i in range(3)]
    take_part(study, 3, stop_after=1)
    withdraw(study, finished[0])
    client.force_login(ada)
    row = client.get(reverse("studies")).context["studies"].get(pk=study.pk)
    monitor = study_monitor(study=study)
    analysis = study_analysis(study=study).participants
    # 4 started (the withdrawn one too), 2 finished and still in the study.
    assert row.started == sum(r["started"] for r in monitor) == analysis.started == 4
    assert row.completed == analysis.completed == 2
    assert row.n_conditions == 2


def test_a_claim_given_up_after_one_attempt_says_attempt():
    fields = ClaimFields()
    row = SimpleNamespace(
        attempts=1,
        worker=f"{socket.gethostname()}-elsewhere:1",  # another host: taken as alive
        heartbeat_at=timezone.now() - timedelta(seconds=40),
    )
    assert stale_reason(row, fields).startswith("no heartbeat for 4")
    assert stale_reason(row, fields).endswith(" s after 1 attempt")
    row.heartbeat_at, row.attempts = None, 2
    assert stale_reason(row, fields) == "no heartbeat for an unknown time after 2 attempts"


def test_the_scene_shortfall_counts_in_words():
    words = scene_shortfall(
        design="between",
        scenes_by_run={"warm (#1)": {1, 2, 3}},
        images_per_participant=2,
        practice_trials=1,
        attention_checks=1,
    )
    assert "1 practice trial and 1 attention check" in words


def _render_dataset_hint(total: int) -> str:
    dataset = SimpleNamespace(
        pk=1, name="d", total=total, seed=0, created_at=timezone.now(), created_by=None
    )
    dataset.get_source_display = "zip"
    return render_to_string("worker/dataset_list.html", {"rows": [(dataset, [])], "splits": []})


@pytest.mark.parametrize(("total", "words"), [(1, "1 image ·"), (2, "2 images ·")])
def test_a_data_set_of_one_image_says_image(total, words):
    assert words in _render_dataset_hint(total)


@pytest.mark.parametrize(("n", "words"), [(1, "(1 image)"), (12, "(12 images)")])
def test_a_run_table_of_one_test_image_says_image(n, words):
    html = render_to_string("worker/_run_tables.html", {"tables": {"test": {"n": n}}})
    assert f"Table 4 · test split {words}" in html
