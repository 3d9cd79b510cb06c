"""Instructed-response attention checks ("For this image, please answer Real"): placed among
the measured trials by the seeded plan, the instruction drawn at random whatever the image,
shown in place of the question (script and no-script), the answer stored, never in the
tables, counted on the participant list, excluding only when the researcher chose so, and
two failed ones (Prolific's policy) make a submission ``may_reject``."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey import participant_list as plist
from survey.analysis.counts import condition_cells, study_counts
from survey.analysis.exclusion import (
    FAILED_INSTRUCTED,
    included_participants,
    participant_exclusions,
)
from survey.analysis.results import study_analysis
from survey.forms import StudyForm
from survey.models import Participant, Stimulus, Trial
from survey.services.assignment import participant_start
from tests.survey.analysis_helpers import expected_cells, make_study, take_part
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
ASKED = {
    "real": "For this image, please answer Real.",
    "ai": "For this image, please answer AI.",
}


def pid(n: int) -> str:
    return f"{n + 0x7A1B2C00:024x}"


@pytest.fixture
def runs(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)  # 12 test scenes
    return [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]


@pytest.fixture
def study(runs):
    return open_study(
        runs,
        labels=["LabelWarm", "LabelCool"],
        images_per_participant=6,
        practice_trials=1,
        attention_checks=1,
        instructed_checks=2,
        redirect_url="https://app.prolific.com/submissions/complete?cc={code}",
    )


def _start(client, study, n: int) -> Participant:
    response = client.post(
        reverse("study_landing", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": pid(n)}
    )
    assert response.status_code == 302, response.content
    return Participant.objects.get(public_id=response["Location"].split("/")[2])


def _answer(client, participant, position, value):
    return client.post(
        reverse("participant_answer", args=[participant.public_id]),
        {"position": position, "answer": value, "rt_ms": 700},
        **JSON,
    )


def test_instructed_checks_are_placed_among_the_measured_trials_by_the_seed(study):
    plans = []
    for seed in (1, 1, 2):
        p = participant_start(study=study, rng=random.Random(seed))
        plans.append(list(p.trials.order_by("position").values_list("kind", "instructed_answer")))
        kinds = [k for k, _ in plans[-1]]
        assert kinds[0] == "practice" and kinds[1] == "main"  # never first among the measured
        assert kinds.count("instructed") == 2 and kinds.count("attention") == 1
        for kind, asked in plans[-1]:
            assert (asked is not None) == (kind == "instructed")
            assert asked in (None, "real", "ai")
        instructed = p.trials.filter(kind="instructed").select_related("stimulus")
        main_scenes = set(p.trials.filter(kind="main").values_list("stimulus__scene_id", flat=True))
        for t in instructed:  # an ordinary image of a reserved scene, the participant's condition
            assert t.stimulus.role == Stimulus.Role.INSTRUCTED
            assert t.stimulus.scene_id not in main_scenes
            assert t.stimulus.condition_id == p.condition_id
    assert plans[0] == plans[1]  # seeded like the rest


def test_the_instruction_is_drawn_whatever_the_image(study):
    seen = Counter()
    for seed in range(24):
        p = participant_start(study=study, rng=random.Random(seed))
        for t in p.trials.filter(kind="instructed").select_related("stimulus"):
            seen[t.stimulus.is_real, t.instructed_answer] += 1
    # Every pairing of image truth and instruction occurs: one does not follow the other.
    assert set(seen) == {(True, "real"), (True, "ai"), (False, "real"), (False, "ai")}


def test_the_flow_shows_the_instruction_and_stores_the_answer(client, study):
    participant = _start(client, study, 1)
    trials = list(participant.trials.order_by("position"))
    page_url = reverse("participant_page", args=[participant.public_id])
    intro = client.get(page_url).content.decode()
    assert "come with an instruction that says which answer to give" in intro
    given = {}
    for i, trial in enumerate(trials):
        page = client.get(page_url, {"begin": "1"})  # the no-script page of this trial
        html = page.content.decode()
        if trial.kind == "instructed":
            assert ASKED[trial.instructed_answer] in html
            assert page.context["trial"].instruction == ASKED[trial.instructed_answer]
        else:
            assert "For this image" not in html
        # The first check answered as asked, the second otherwise.
        if trial.kind == "instructed":
            first = not any(t.kind == "instructed" for t in trials[:i])
            flip = {"real": "ai", "ai": "real"}
            value = trial.instructed_answer if first else flip[trial.instructed_answer]
        else:
            value = "ai" if trial.kind == "attention" else "real"
        response = _answer(client, participant, trial.position, value)
        assert response.status_code == 200
        data = response.json()
        assert data["feedback"] is None or trial.kind == "practice"
        given[trial.position] = value
        if i + 1 < len(trials):
            nxt = trials[i + 1]
            assert data["next"]["instruction"] == (
                ASKED[nxt.instructed_answer] if nxt.kind == "instructed" else ""
            )
    stored = dict(participant.trials.values_list("position", "answer"))
    assert stored == given
    row = next(r for r in plist.participant_rows(study=study) if r.prolific_pid == pid(1))
    assert (row.instructed_passed, row.instructed_failed) == (1, 1)
    assert (row.attention_passed, row.attention_failed) == (1, 0)
    assert row.status == "completed"  # by default a failed instructed check does not exclude
    assert plist.approval(row) == ("approve", "completed")


def test_instructed_checks_stay_out_of_every_table(tmp_path):
    study = make_study(tmp_path, images_per_participant=2, practice_trials=0, instructed_checks=2)
    people = [take_part(study, i, instructed_failures=i % 3) for i in range(6)]
    assert Trial.objects.filter(kind="instructed", answer__isnull=False).count() == 12
    assert condition_cells(study=study) == expected_cells(people)  # main trials only
    tables = study_counts(study=study).tables
    assert tables == expected_cells(people)
    assert sum(sum(cells) for cells in tables.values()) == 6 * 2  # two main images each
    analysis = study_analysis(study=study)
    assert analysis.participants.included == 6  # not excluding unless asked
    assert any("Instructed-response checks" in line for line in analysis.exclusion_rule)


def test_instructed_failures_exclude_only_when_the_researcher_chose_so(tmp_path):
    study = make_study(
        tmp_path,
        images_per_participant=2,
        practice_trials=0,
        instructed_checks=2,
        instructed_checks_exclude=True,
    )
    kept, failed_one = take_part(study, 0), take_part(study, 1, instructed_failures=1)
    assert list(included_participants(study=study)) == [kept]
    assert participant_exclusions(study=study) == {failed_one.pk: FAILED_INSTRUCTED}
    analysis = study_analysis(study=study)
    assert (analysis.participants.included, analysis.participants.failed_instructed) == (1, 1)
    assert any("excluded altogether" in line for line in analysis.exclusion_rule)
    rows = {r.public_id: r for r in plist.participant_rows(study=study)}
    row = rows[failed_one.public_id]
    assert row.status == "excluded" and "instructed-response" in row.detail


@pytest.fixture
def ada():
    return researcher_create(username="ada", password="a-long-Passphrase-1")


POLICY = [(0, "approve"), (1, "approve"), (2, "may_reject")]


@pytest.mark.parametrize(("failures", "action"), POLICY)
def test_approvals_follow_prolifics_policy_for_0_1_2_failed_checks(
    client, tmp_path, ada, failures, action
):
    study = make_study(
        tmp_path, owner=ada, images_per_participant=2, practice_trials=0, instructed_checks=2
    )
    person = take_part(study, 0, instructed_failures=failures)
    Participant.objects.filter(pk=person.pk).update(prolific_pid=pid(0))
    client.force_login(ada)
    approvals = client.get(reverse("study_approvals", args=[study.pk])).content.decode()
    rows = list(csv.DictReader(io.StringIO(approvals)))
    assert [(r["participant_id"], r["action"]) for r in rows] == [(pid(0), action)]
    if action == "may_reject":
        assert "failed 2 instructed-response attention checks" in rows[0]["reason"]
    ids = client.get(reverse("study_approve_ids", args=[study.pk])).content.decode()
    assert ids == ("" if action == "may_reject" else f"{pid(0)}\n")
    listing = client.get(reverse("study_participants_csv", args=[study.pk])).content.decode()
    listed = next(csv.DictReader(io.StringIO(listing)))
    assert (listed["instructed_passed"], listed["instructed_failed"]) == (
        str(2 - failures),
        str(failures),
    )
    page = client.get(reverse("study_participants", args=[study.pk])).content.decode()
    assert re.search(rf"<td class=\"num\">{2 - failures} / {failures}</td>", page)
    # The page marks a submission Prolific allows rejecting, as approvals.csv does.
    assert ('<span class="status status-may-reject">may reject</span>' in page) == (
        action == "may_reject"
    )


def test_the_form_bounds_the_number_of_instructed_checks(runs):
    base = {
        "name": "s",
        "runs": [runs[0].pk],
        "design": "between",
        "images_per_participant": 2,
        "target_participants_per_condition": 10,
        "practice_trials": 0,
        "attention_checks": 0,
        "estimated_minutes": 5,
    }
    left_out = StudyForm(base)
    assert left_out.is_valid() and left_out.cleaned_data["instructed_checks"] == 0
    for value, ok in (("0", True), ("2", True), ("-1", False), ("101", False), ("x", False)):
        form = StudyForm(base | {"instructed_checks": value})
        assert form.is_valid() == ok, (value, form.errors)
    too_many = StudyForm(base | {"instructed_checks": "11"})  # 12 test scenes, 2 + 11 needed
    assert not too_many.is_valid()
    assert "11 instructed checks" in str(too_many.non_field_errors())
