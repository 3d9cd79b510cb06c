"""The study form's conditions: each run once, with its tick box and its own label beside
it, so that reordering, unticking and adding runs keep every label with its run."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Study
from tests.survey.study_helpers import tiny_dataset, uploaded_run
from worker.models import ModelRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


@pytest.fixture
def runs(tmp_path, ada):
    dataset = tiny_dataset("syn", per_category=20, size=32, owner=ada)
    return [
        uploaded_run(dataset, tmp_path, name=name, style=style, owner=ada)
        for name, style in [("warm run", "warm"), ("cool run", "cool"), ("third run", "warm")]
    ]


def _form(chosen, labels: dict | None = None, **overrides) -> dict:
    """The form's fields with ``chosen`` ticked; ``labels``: run → label as typed."""
    data = {
        "name": "Pilot",
        "runs": [r.pk for r in chosen],
        "design": "between",
        "images_per_participant": 4,
        "target_participants_per_condition": 10,
        "practice_trials": 0,
        "attention_checks": 0,
        "exposure_ms": "",
        "consent_text": "",
        "instructions": "",
        "redirect_url": "",
    }
    data.update({f"label_{run.pk}": label for run, label in (labels or {}).items()})
    data.update(overrides)
    return data


def _labels(study: Study) -> dict[str, str]:
    return {c.run.name: c.label for c in study.conditions.select_related("run")}


def _rows(html: str) -> list[tuple[str, bool, str]]:
    """Per run listed: (run id, ticked, the label field's value), in page order."""
    rows = []
    for block in html.split('class="condition-choice')[1:]:
        box = re.search(r'<input type="checkbox" name="runs" value="(\d+)"([^>]*)>', block)
        label = re.search(r'<input type="text" name="label_(\d+)"([^>]*)>', block)
        assert box and label and box.group(1) == label.group(1), block
        value = re.search(r'value="([^"]*)"', label.group(2))
        rows.append((box.group(1), "checked" in box.group(2), value.group(1) if value else ""))
    return rows


def test_each_run_is_listed_once_with_its_label_field_and_a_label_element(client, runs):
    html = client.get(reverse("study_new")).content.decode()
    rows = _rows(html)
    # Newest first, none ticked, each prefilled with its run's name.
    assert rows == [
        (str(runs[2].pk), False, "third run"),
        (str(runs[1].pk), False, "cool run"),
        (str(runs[0].pk), False, "warm run"),
    ]
    for run in runs:
        assert f'<label for="id_label_{run.pk}">Condition label' in html
        assert f"for “{run.name}” (#{run.pk})" in html  # named for screen readers
    assert "<legend><strong>Model runs (conditions)</strong></legend>" in html


def test_create_then_edit_reorder_untick_and_add_keep_each_label_with_its_run(client, runs):
    warm, cool, third = runs
    created = client.post(
        reverse("study_new"), _form([warm, cool], {warm: "Warm", cool: "Cool", third: "unused"})
    )
    study = Study.objects.get()
    assert created.status_code == 302
    assert _labels(study) == {"warm run": "Warm", "cool run": "Cool"}

    # The edit page lists the study's conditions first, ticked, with their labels.
    rows = _rows(client.get(reverse("study_edit", args=[study.pk])).content.decode())
    assert sorted(rows[:2]) == sorted([(str(warm.pk), True, "Warm"), (str(cool.pk), True, "Cool")])
    assert rows[2] == (str(third.pk), False, "third run")

    # Fields posted in another order: each label still goes with its own run.
    url = reverse("study_edit", args=[study.pk])
    data = _form([cool, warm], {cool: "Cool 2", warm: "Warm 2"})
    assert client.post(url, data).status_code == 302
    assert _labels(study) == {"warm run": "Warm 2", "cool run": "Cool 2"}

    # Unticking a run just drops it (its label field still posted, and ignored).
    data = _form([cool], {warm: "Warm 2", cool: "Cool 2", third: "third run"})
    assert client.post(url, data).status_code == 302
    assert _labels(study) == {"cool run": "Cool 2"}

    # Adding runs: a typed label and an emptied one (the run's name).
    data = _form([cool, warm, third], {cool: "Cool 2", warm: "  Warm again ", third: ""})
    assert client.post(url, data).status_code == 302
    expected = {"cool run": "Cool 2", "warm run": "Warm again", "third run": "third run"}
    assert _labels(study) == expected


def test_duplicate_labels_are_refused_in_words_naming_both_runs(client, runs):
    warm, cool, _ = runs
    response = client.post(reverse("study_new"), _form([warm, cool], {warm: "Same", cool: "Same"}))
    html = response.content.decode()
    assert response.status_code == 200 and not Study.objects.exists()
    assert (
        f"“cool run” (#{cool.pk}) and “warm run” (#{warm.pk}) both have the label “Same”: "
        "give each condition its own label." in html
    )
    assert f"“warm run” (#{warm.pk}) and “cool run” (#{cool.pk}) both have the label" in html
    # What was typed stays in the page to correct.
    assert (str(warm.pk), True, "Same") in _rows(html)


def test_a_label_that_equals_another_runs_default_name_is_refused(client, runs):
    warm, cool, _ = runs
    response = client.post(reverse("study_new"), _form([warm, cool], {warm: "cool run", cool: ""}))
    assert "both have the label “cool run”" in response.content.decode()
    assert not Study.objects.exists()


def test_bad_labels_are_refused_naming_their_run(client, runs):
    warm, cool, _ = runs
    tabbed = client.post(reverse("study_new"), _form([warm], {warm: "cool\tdown"}))
    assert (
        f"The label of “warm run” (#{warm.pk}) cannot contain tabs or line breaks."
        in tabbed.content.decode()
    )
    long = client.post(reverse("study_new"), _form([warm], {warm: "x" * 101}))
    assert (
        f"The label of “warm run” (#{warm.pk}) is 101 characters long: at most 100."
        in long.content.decode()
    )
    # A wrong label of a run left unticked does not matter.
    ok = client.post(reverse("study_new"), _form([cool], {warm: "x" * 101}))
    assert ok.status_code == 302 and _labels(Study.objects.get()) == {"cool run": "cool run"}


def test_no_run_ticked_is_refused_in_words(client, runs):
    response = client.post(reverse("study_new"), _form([], {run: run.name for run in runs}))
    assert "Tick at least one run: each becomes a condition." in response.content.decode()
    assert not Study.objects.exists()


def test_an_opened_study_offers_no_runs_or_labels(client, runs):
    warm, _, _ = runs
    client.post(reverse("study_new"), _form([warm]))
    study = Study.objects.get()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    html = client.get(reverse("study_edit", args=[study.pk])).content.decode()
    assert 'name="runs"' not in html and "label_" not in html


def test_saving_a_draft_keeps_a_condition_whose_run_is_still_training(client, runs):
    """Seen by a new user: a copy of the demo study, saved while the demo's ensemble was
    still training, lost that condition without a word (only finished runs were offered)."""
    client.post(reverse("study_new"), _form(runs[:2], {runs[1]: "Cool"}))
    study = Study.objects.get(name="Pilot")
    runs[1].status = ModelRun.Status.RUNNING
    runs[1].save(update_fields=["status"])
    page = client.get(reverse("study_edit", args=[study.pk])).content.decode()
    assert (str(runs[1].pk), True, "Cool") in _rows(page)
    assert "still training: the study can open once it is done" in page
    response = client.post(
        reverse("study_edit", args=[study.pk]), _form(runs[:2], {runs[1]: "Cool"}, name="Pilot")
    )
    assert response.status_code == 302
    assert _labels(study) == {"warm run": "warm run", "cool run": "Cool"}


def test_a_run_in_training_is_not_offered_to_a_new_study(client, runs):
    runs[2].status = ModelRun.Status.RUNNING
    runs[2].save(update_fields=["status"])
    listed = [row[0] for row in _rows(client.get(reverse("study_new")).content.decode())]
    assert listed == [str(runs[1].pk), str(runs[0].pk)]


def test_a_drafts_failed_run_says_to_untick_it(client, runs):
    client.post(reverse("study_new"), _form(runs[:2]))
    study = Study.objects.get(name="Pilot")
    runs[0].status = ModelRun.Status.FAILED
    runs[0].save(update_fields=["status"])
    page = client.get(reverse("study_edit", args=[study.pk])).content.decode()
    assert "failed: untick it, or the study cannot open" in page
