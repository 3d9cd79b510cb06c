"""A HYPE_time study's analysis (survey.analysis.hype_thresholds) on a hand-made set:
each participant's threshold from their staircase, each condition's mean with a bootstrap
over participants, the exclusions, the page, the form's preset and the exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.analysis.exports import judgements_csv_chunks, tables_csv, tables_json
from survey.analysis.results import study_analysis
from survey.forms import StudyForm
from survey.models import Study, Trial
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run
from worker.models import ModelRun

pytestmark = pytest.mark.django_db

R, W = True, False
#: Ten measured answers each, and the threshold worked out by hand:
#: always right: 500 500 500 400 400 400 300 300 300 200, no reversal: ends on 200 ms;
#: (R R R W) twice then R R: 500 500 500 400 500 500 500 400 500 500, reversals at the
#: 4th (400), 7th (500) and 8th (400) trial: 1300 / 3 ms;
#: always wrong: 500 600 … 1000 1000 …: no reversal, ends on 1000 ms.
ALWAYS_RIGHT = [R] * 10
TURNING = [R, R, R, W, R, R, R, W, R, R]
ALWAYS_WRONG = [W] * 10


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    warm = uploaded_run(dataset, tmp_path, name="run-warm")
    cool = uploaded_run(dataset, tmp_path, name="run-cool", style="cool")
    return open_study(
        [warm, cool],
        labels=["Warm", "Cool"],
        protocol=Study.Protocol.HYPE_TIME,
        images_per_participant=10,
        attention_checks=1,
    )


def take_part(participant, plan, *, fail_attention=False):
    rights = iter(plan)
    for t in Trial.objects.filter(participant=participant).select_related("stimulus"):
        truth = "real" if t.stimulus.is_real else "ai"
        if t.kind == "attention":
            value = "real" if fail_attention else "ai"
        elif next(rights):
            value = truth
        else:
            value = "ai" if truth == "real" else "real"
        trial_answer(participant=participant, position=t.position, answer=value, rt_ms=900)


@pytest.fixture
def taken(study):
    people = [participant_start(study=study) for _ in range(4)]
    by_label: dict[str, list] = {}
    for p in people:
        by_label.setdefault(p.condition.label, []).append(p)
    assert sorted(len(v) for v in by_label.values()) == [2, 2]
    warm, cool = by_label["Warm"], by_label["Cool"]
    take_part(warm[0], ALWAYS_RIGHT)
    take_part(warm[1], TURNING)
    take_part(cool[0], ALWAYS_WRONG)
    take_part(cool[1], TURNING, fail_attention=True)  # excluded: not counted
    return study, warm, cool


def test_thresholds_per_participant_and_per_condition_by_hand(taken):
    study, warm, cool = taken
    analysis = study_analysis(study=study, n_boot=1000)
    assert analysis.protocol == "hype_time" and "exposure threshold" in analysis.statistic
    mine = {p["participant"]: p for p in analysis.hype_participants}
    assert set(mine) == {warm[0].pk, warm[1].pk, cool[0].pk}  # the excluded one is out
    assert mine[warm[0].pk]["threshold_ms"] == 200 and not mine[warm[0].pk]["converged"]
    assert mine[warm[1].pk]["threshold_ms"] == pytest.approx(1300 / 3)
    assert mine[warm[1].pk]["reversals"] == 3 and mine[warm[1].pk]["converged"]
    assert mine[cool[0].pk]["threshold_ms"] == 1000
    by = {c.label: c.hype for c in analysis.conditions}
    assert by["Warm"]["mean_ms"] == pytest.approx((200 + 1300 / 3) / 2)
    assert by["Warm"]["participants"] == 2 and by["Warm"]["not_converged"] == 1
    assert 200 <= by["Warm"]["low_ms"] < by["Warm"]["mean_ms"] < by["Warm"]["high_ms"] <= 1300 / 3
    assert by["Cool"]["mean_ms"] == 1000 and by["Cool"]["participants"] == 1


def test_the_exports_name_the_protocol_and_carry_the_thresholds(taken):
    study, warm, cool = taken
    analysis = study_analysis(study=study, n_boot=1000)
    rows = {r["condition"]: r for r in csv.DictReader(io.StringIO(tables_csv(analysis)))}
    assert {r["protocol"] for r in rows.values()} == {"hype_time"}
    assert float(rows["Warm"]["exposure_threshold_ms"]) == pytest.approx((200 + 1300 / 3) / 2)
    assert rows["Warm"]["threshold_participants"] == "2"
    assert float(rows["Cool"]["exposure_threshold_ms"]) == 1000
    assert rows["Cool"]["exposure_threshold_low_ms"] == ""  # one participant: no interval
    record = json.loads(tables_json(analysis))
    assert record["study"]["protocol"] == "hype_time"
    assert "exposure threshold" in record["study"]["statistic"]
    assert len(record["exposure_thresholds"]) == 3
    assert record["mixed_models"]["computed"] is False
    assert "HYPE_time" in record["mixed_models"]["reason"]
    lines = list(csv.DictReader(io.StringIO("".join(judgements_csv_chunks(study=study)))))
    first = [r for r in lines if int(r["participant"]) == warm[0].pk and r["counted"] == "1"]
    assert [int(r["exposure_ms"]) for r in first] == [
        500,
        500,
        500,
        400,
        400,
        400,
        300,
        300,
        300,
        200,
    ]


def test_the_analysis_page_names_the_protocol_its_statistic_and_what_is_left_out(client, taken):
    study, *_ = taken
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=ada)
    client.force_login(ada)
    html = client.get(reverse("study_analysis", args=[study.pk])).content.decode()
    assert "HYPE_time, exposure staircase" in html
    assert "Exposure threshold (HYPE_time)" in html
    assert "1000 ms" in html and "317 ms" in html  # Cool; Warm: (200 + 433.3) / 2
    assert "Left out for this protocol: d′ and the mixed models" in html
    assert "left out (HYPE_time)" in html
    assert "report the mixed models above" not in html  # there are none
    assert "for a HYPE_time study report the exposure thresholds above" in html
    form = client.get(reverse("study_new"), {"protocol": "hype_time"}).content.decode()
    assert 'value="hype_time" selected' in form
    assert 'name="images_per_participant" value="100"' in form


def test_the_form_refuses_a_within_design_or_a_fixed_exposure(study):
    form = StudyForm(
        {
            "name": "h",
            "protocol": "hype_time",
            "design": "within",
            "images_per_participant": 10,
            "target_participants_per_condition": 10,
            "exposure_ms": 300,
            "estimated_minutes": 5,
        },
        runs=ModelRun.objects.none(),
    )
    assert not form.is_valid()
    assert "between subjects" in str(form.errors["design"])
    assert "staircase" in str(form.errors["exposure_ms"])
