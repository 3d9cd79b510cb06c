"""The researcher's study pages: create and edit from runs, stimuli prepared by a real
Celery worker when the study opens, preview without recording, open and close, the live
monitor, the stimuli grid and withdrawal."""

from __future__ import annotations

import importlib
import json
import time
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studyplatform.researchers import researcher_create
from survey.analysis.results import study_analysis
from survey.models import Participant, Stimulus, Study, Trial, Withdrawal
from survey.services.assignment import participant_start
from survey.services.places import participant_return
from survey.services.studies import study_create
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return client


@pytest.fixture
def ada(researcher_client, django_user_model):
    """The logged-in researcher, who owns the data set, the runs and the studies."""
    return django_user_model.objects.get(username="ada")


@pytest.fixture
def runs(tmp_path, ada):
    dataset = tiny_dataset("syn", per_category=20, size=32, owner=ada)  # 12 test scenes
    return [
        uploaded_run(dataset, tmp_path, name="warm run", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool run", style="cool", owner=ada),
    ]


def _form(runs, labels=("Warm", "Cool"), **overrides):
    """The study form's fields; ``labels`` go beside the ``runs`` in their order."""
    data = {
        "name": "Pilot",
        "runs": [r.pk for r in runs],
        **{f"label_{run.pk}": label for run, label in zip(runs, labels, strict=False)},
        "design": "between",
        "images_per_participant": 6,
        "target_participants_per_condition": 10,
        "practice_trials": 2,
        "attention_checks": 1,
        "exposure_ms": "",
        "consent_text": "Consent here.",
        "instructions": "Judge them.",
        "redirect_url": "app.prolific.com/submissions/complete?cc={code}",
    }
    data.update(overrides)
    return data


def _wait_status(study: Study, statuses, timeout=60.0) -> Study:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        study.refresh_from_db()
        if study.status in statuses:
            return study
        time.sleep(0.2)
    raise AssertionError(f"study still {study.status}")


@pytest.mark.django_db
def test_create_a_study_from_runs_and_edit_the_draft(researcher_client, runs):
    page = researcher_client.get(reverse("study_new"))
    assert "warm run" in page.content.decode() and "cool run" in page.content.decode()
    response = researcher_client.post(reverse("study_new"), _form(runs))
    study = Study.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "study_detail", args=[study.pk]
    )
    assert {c.run.name: c.label for c in study.conditions.all()} == {
        "warm run": "Warm",
        "cool run": "Cool",
    }
    assert (study.practice_trials, study.attention_checks) == (2, 1)
    assert study.redirect_url.startswith("https://")  # the scheme assumed
    assert study.created_by.username == "ada" and study.status == "draft"
    edited = researcher_client.post(
        reverse("study_edit", args=[study.pk]),
        _form(runs[:1], labels=(), images_per_participant=4, name="Pilot 2"),
    )
    assert edited.status_code == 302
    study.refresh_from_db()
    assert study.name == "Pilot 2" and study.images_per_participant == 4
    assert [c.label for c in study.conditions.all()] == ["warm run"]


@pytest.mark.django_db
def test_choosing_a_preset_keeps_what_was_typed_and_sets_only_the_presets_fields(
    researcher_client, runs
):
    warm, cool = runs
    typed = _form(
        [warm],
        labels=("Warm one",),
        name="My pilot",
        protocol="single",
        images_per_participant=6,
        practice_trials=2,
        exposure_ms=250,
        instructed_checks=2,
        consent_text="I agree to take part.",
        preset="paired",
    )
    del typed["target_participants_per_condition"]  # left empty: not an error yet
    response = researcher_client.post(reverse("study_new"), typed)
    assert response.status_code == 200 and not Study.objects.exists()
    form = response.context["form"]
    shown = {name: form[name].value() for name in form.fields}
    assert shown["name"] == "My pilot"
    assert shown["consent_text"] == "I agree to take part."
    assert shown["redirect_url"] == typed["redirect_url"]
    assert [str(pk) for pk in shown["runs"]] == [str(warm.pk)]
    assert shown[f"label_{warm.pk}"] == "Warm one"
    assert str(shown["instructed_checks"]) == "2"  # Prolific's checks are no part of a design
    # The preset's own fields take the preset's values (Zhang et al.'s design).
    assert shown["protocol"] == "paired"
    assert (shown["images_per_participant"], shown["practice_trials"]) == (40, 10)
    assert (shown["attention_checks"], shown["exposure_ms"]) == (4, 1000)
    # A preset is not a submission: nothing is checked, no error is shown.
    assert not form.is_bound
    assert 'class="error"' not in response.content.decode()


@pytest.mark.django_db
def test_enter_in_a_field_creates_the_study_rather_than_choosing_a_preset(researcher_client, runs):
    """The form's first submit button (what Enter presses) is the hidden Create one."""
    page = researcher_client.get(reverse("study_new")).content.decode()
    form = page[page.index('<form method="post" novalidate>') :]
    first = form[form.index("<button") : form.index("</button>")]
    assert "Create the study" in first and 'name="preset"' not in first


@pytest.mark.django_db
def test_bad_set_ups_are_refused_with_the_reason(researcher_client, runs):
    odd = researcher_client.post(reverse("study_new"), _form(runs, images_per_participant=5))
    assert "even number (half real, half AI) for this protocol" in odd.content.decode()
    same = researcher_client.post(reverse("study_new"), _form(runs, labels=("Same", "Same")))
    assert "both have the label “Same”" in same.content.decode()
    none = researcher_client.post(reverse("study_new"), _form([]))
    assert none.status_code == 200 and not Study.objects.exists()


@pytest.mark.django_db
def test_too_few_colourised_scenes_are_refused_at_the_form_with_the_numbers(
    researcher_client, runs
):
    url = reverse("study_new")
    too_many = researcher_client.post(url, _form(runs, images_per_participant=24)).content
    newest = runs[1]  # the form lists the newest run first
    assert (
        f"Run cool run (#{newest.pk}) colourised 12 test images; 24 images per participant "
        "(12 real + 12 AI of different scenes) plus 2 practice trials and 1 attention check "
        "need 27."
    ) in too_many.decode()
    paired = researcher_client.post(url, _form(runs, protocol="paired", images_per_participant=24))
    assert (
        f"Run cool run (#{newest.pk}) colourised 12 test images; 24 pairs per participant "
        "(each the real and the AI version of one scene) plus 2 practice trials and 1 "
        "attention check need 27."
    ) in paired.content.decode()
    # The limit is exact: 12 scenes hold 9 main + 2 practice + 1 attention, not 10.
    assert (
        "need 13"
        in researcher_client.post(url, _form(runs, images_per_participant=10)).content.decode()
    )
    within = researcher_client.post(url, _form(runs, design="within", images_per_participant=12))
    assert (
        "These runs colourised 12 different test images; 12 images per participant (6 real + "
        "6 AI of different scenes) plus 2 practice trials and 1 attention check need 15."
    ) in within.content.decode()
    reserved = researcher_client.post(
        url, _form(runs, practice_trials=10, attention_checks=3, images_per_participant=2)
    )
    assert (
        "These runs colourised 12 test images in common; 10 practice trials and "
        "3 attention checks need 13."
    ) in reserved.content.decode()
    assert not Study.objects.exists()
    ok = researcher_client.post(url, _form(runs, images_per_participant=8, practice_trials=3))
    assert ok.status_code == 302 and Study.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value, error",
    [
        ("target_participants_per_condition", "9" * 19, "less than or equal to 100000"),
        ("target_participants_per_condition", "0", "greater than or equal to 1"),
        ("practice_trials", "101", "less than or equal to 100"),
        ("attention_checks", "1" * 19, "less than or equal to 100"),
        ("images_per_participant", "1002", "less than or equal to 1000"),
    ],
)
def test_absurd_counts_are_refused_with_a_sensible_limit(
    researcher_client, runs, field, value, error
):
    response = researcher_client.post(reverse("study_new"), _form(runs, **{field: value}))
    page = response.content.decode()
    assert response.status_code == 200 and f"Ensure this value is {error}." in page
    assert "9223372036854775807" not in page and "2147483647" not in page
    assert not Study.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, field, error",
    [
        # PostgreSQL's integer stops at 2147483647: this was a server error there.
        ({"exposure_ms": "99999999999"}, "exposure_ms", "from 1 to 60,000 (one minute)"),
        ({"exposure_ms": "0"}, "exposure_ms", "from 1 to 60,000 (one minute)"),
        (
            {"time_limit_minutes": "1", "estimated_minutes": "30"},
            "time_limit_minutes",
            "The time limit (1 min) is shorter than the study is estimated to take (30 min)",
        ),
    ],
)
def test_an_absurd_exposure_or_a_time_limit_below_the_estimate_is_refused_in_words(
    researcher_client, runs, fields, field, error
):
    response = researcher_client.post(reverse("study_new"), _form(runs, **fields))
    assert response.status_code == 200
    assert error in response.context["form"].errors[field][0]
    assert not Study.objects.exists()
    fine = {"exposure_ms": "60000", "time_limit_minutes": "30", "estimated_minutes": "30"}
    assert researcher_client.post(reverse("study_new"), _form(runs, **fine)).status_code == 302


@pytest.mark.django_db
def test_an_open_study_only_changes_its_texts(researcher_client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=4)
    page = researcher_client.get(reverse("study_edit", args=[study.pk]))
    assert 'name="design"' not in page.content.decode()
    assert 'name="instructions"' in page.content.decode()
    researcher_client.post(
        reverse("study_edit", args=[study.pk]),
        {
            "name": "Renamed",
            "consent_text": "New consent",
            "instructions": "New",
            "redirect_url": "",
            "target_participants_per_condition": 20,
            "images_per_participant": 2,  # ignored: not a field any more
        },
    )
    study.refresh_from_db()
    assert (study.name, study.instructions, study.images_per_participant) == ("Renamed", "New", 4)


@pytest.mark.django_db
def test_the_language_and_the_answers_words_are_chosen_at_creation(researcher_client, runs):
    page = researcher_client.get(reverse("study_new")).content.decode()
    assert '<option value="de">Deutsch</option>' in page
    response = researcher_client.post(
        reverse("study_new"),
        _form(runs, language="de", real_label=" Echt ", ai_label="KI", ai_key="i"),
    )
    assert response.status_code == 302
    study = Study.objects.get()
    assert (study.language, study.real_label, study.ai_label) == ("de", "Echt", "KI")
    assert (study.real_key, study.ai_key, study.question_text) == ("", "I", "")
    detail = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Deutsch" in detail and "Echtes Foto oder von KI eingefärbt?" in detail
    assert "(key <kbd>E</kbd>)" in detail and "(key <kbd>I</kbd>)" in detail
    edited = researcher_client.post(
        reverse("study_edit", args=[study.pk]), _form(runs, language="de", real_key="ß")
    )
    assert edited.status_code == 302
    study.refresh_from_db()
    assert study.real_key == "ß"  # kept as typed: its upper case is two letters


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        # German's default key for "AI" is K: the same key twice.
        (
            {"language": "de", "real_key": "k"},
            "The two answers need different keys (both would be K; this language&#x27;s "
            "defaults are E and K).",
        ),
        ({"real_key": "a", "ai_key": "A"}, "The two answers need different keys"),
        ({"real_key": "?"}, "Give one letter or digit (or leave it empty)."),
        ({"real_key": "ab"}, "at most 1 character"),
        ({"real_label": "Same", "ai_label": "same"}, "The two answers need different labels"),
        ({"language": "fr", "ai_label": "Réelle"}, "The two answers need different labels"),
        ({"question_text": "Real?\nOr AI?"}, "one line"),
        ({"language": "xx"}, "Select a valid choice"),
    ],
    ids=[
        "default-key-clash",
        "same-keys",
        "key-not-letter",
        "key-too-long",
        "same-labels",
        "label-clashes-default",
        "two-line-question",
        "unknown-language",
    ],
)
def test_answers_that_cannot_be_told_apart_are_refused(researcher_client, runs, fields, error):
    response = researcher_client.post(reverse("study_new"), _form(runs, **fields))
    assert response.status_code == 200 and not Study.objects.exists()
    assert error in response.content.decode()


@pytest.mark.django_db
def test_an_open_study_keeps_its_language_and_words(researcher_client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=4, language="fr")
    page = researcher_client.get(reverse("study_edit", args=[study.pk])).content.decode()
    for name in ("language", "question_text", "real_label", "ai_label", "real_key", "ai_key"):
        assert f'name="{name}"' not in page
    researcher_client.post(
        reverse("study_edit", args=[study.pk]),
        {"name": "Renamed", "target_participants_per_condition": 20, "language": "de"},
    )
    study.refresh_from_db()
    assert (study.name, study.language) == ("Renamed", "fr")


@pytest.mark.django_db(transaction=True)
def test_opening_prepares_the_stimuli_in_the_worker_then_opens(
    researcher_client, runs, celery_worker
):
    researcher_client.post(reverse("study_new"), _form(runs))
    study = Study.objects.get()
    researcher_client.post(reverse("study_open", args=[study.pk]))
    study = _wait_status(study, {"open", "draft"})
    assert study.status == "open", study.preparation_error
    assert study.stimuli.filter(role="attention").count() == 1
    assert study.stimuli.filter(role="practice").exists()
    assert study.stimulus_bytes > 0
    detail = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert f"/s/{study.slug}/" in detail and "Close" in detail
    researcher_client.post(reverse("study_close", args=[study.pk]))
    study.refresh_from_db()
    assert study.status == "closed"


@pytest.mark.django_db
def test_reopening_a_study_at_its_target_says_new_participants_will_be_told_it_is_full(
    researcher_client, runs
):
    study = open_study(runs[:1], owner=runs[0].owner, images_per_participant=2)
    Study.objects.filter(pk=study.pk).update(target_participants_per_condition=1)
    person = participant_start(study=study)
    for t in person.trials.order_by("position"):
        trial_answer(participant=person, position=t.position, answer="ai", rt_ms=700)
    full = "already reached its target of 1 participant: new participants will be told"
    for expect_full in (True, False):
        researcher_client.post(reverse("study_close", args=[study.pk]))
        page = researcher_client.post(reverse("study_open", args=[study.pk]), follow=True)
        html = page.content.decode()
        assert "The study is open" in html
        assert (full in html) == expect_full, html
        Study.objects.filter(pk=study.pk).update(target_participants_per_condition=2)


@pytest.mark.django_db(transaction=True)
def test_a_failed_preparation_returns_to_draft_with_the_reason(
    researcher_client, runs, celery_worker
):
    # The form refuses this set-up (below); a study made otherwise still fails in preparation.
    study = study_create(
        name="Pilot",
        runs=runs,
        user=runs[0].owner,
        images_per_participant=24,
        practice_trials=2,
        attention_checks=1,
    )
    researcher_client.post(reverse("study_open", args=[study.pk]))
    study = _wait_status(study, {"draft", "open"})
    assert study.status == "draft" and "needs 24 different scenes" in study.preparation_error
    assert not study.stimuli.exists()
    page = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "needs 24 different scenes" in page


@pytest.mark.django_db(transaction=True)
def test_preview_shows_the_flow_and_records_nothing(researcher_client, runs, celery_worker):
    researcher_client.post(reverse("study_new"), _form(runs))
    study = Study.objects.get()
    assert researcher_client.get(reverse("study_preview", args=[study.pk])).status_code == 302
    researcher_client.post(reverse("study_prepare", args=[study.pk]))
    study = _wait_status(study, {"draft"})
    assert study.stimuli.exists()
    page = researcher_client.get(reverse("study_preview", args=[study.pk]))
    html = page.content.decode()
    trials = json.loads(html.split('id="preview-trials" type="application/json">')[1].split("<")[0])
    assert len(trials) == 6 + 2 + 1
    assert [t["kind"] for t in trials[:2]] == ["practice", "practice"]
    assert sum(t["kind"] == "attention" for t in trials) == 1
    assert sorted(t["truth"] for t in trials if t["kind"] == "main") == ["ai"] * 3 + ["real"] * 3
    assert "nothing you answer here is recorded" in html
    for t in trials:
        assert researcher_client.get(t["image_url"]).status_code == 200
    assert not Participant.objects.exists() and not Trial.objects.exists()
    assert Study.objects.get().status == "draft"


@pytest.mark.django_db
def test_monitor_counts_places_included_excluded_freed_and_withdrawn(researcher_client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=2, attention_checks=1)
    people = [participant_start(study=study, prolific_pid=f"p{i}") for i in range(6)]
    for person, attention in ((people[0], "ai"), (people[3], "real")):  # passes, fails
        for trial in person.trials.order_by("position"):
            answer = attention if trial.kind == "attention" else "ai"
            trial_answer(participant=person, position=trial.position, answer=answer, rt_ms=500)
    Participant.objects.filter(pk=people[1].pk).update(
        last_active_at=timezone.now() - study.time_limit - timedelta(seconds=1)
    )
    participant_return(participant=people[4])
    withdraw = {"by": "prolific_pid", "who": "p2", "reason": "asked by e-mail"}
    confirm = researcher_client.post(reverse("study_withdraw", args=[study.pk]), withdraw)
    page = confirm.content.decode()
    assert confirm.status_code == 200 and not Withdrawal.objects.exists()
    assert f"Withdraw participant {people[2].pk}'s 0 answers?" in page
    assert "Their 3 trials (0 answered) will be deleted" in page
    assert "This cannot be undone." in page
    assert 'name="confirm" value="yes"' in page and 'value="asked by e-mail"' in page
    assert Trial.objects.filter(participant__prolific_pid="p2").count() == 3
    url = reverse("study_withdraw", args=[study.pk])
    researcher_client.post(url, withdraw | {"confirm": "yes"})
    rows = researcher_client.get(reverse("study_monitor", args=[study.pk])).json()["rows"]
    keys = ("started", "included", "excluded", "taking_part", "freed", "withdrawn", "held")
    total = {k: sum(r[k] for r in rows) for k in keys}
    # p0 included, p3 excluded, p5 taking part, p1 silent past the limit and p4 stopped:
    # freed; p2 withdrawn. Started counts everyone, as the analysis page does.
    assert total == {
        "started": 6,
        "included": 1,
        "excluded": 1,
        "taking_part": 1,
        "freed": 2,
        "withdrawn": 1,
        "held": 2,
    }
    assert study_analysis(study=study).participants.started == total["started"]
    assert sum(r["withdrawn"] for r in rows) == 1
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.prolific_pid == "p2" and withdrawal.withdrawn_by.username == "ada"
    assert withdrawal.reason == "asked by e-mail" and withdrawal.trials_removed == 3  # 2 + check
    assert not Trial.objects.filter(participant__prolific_pid="p2").exists()
    page = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "asked by e-mail" in page
    unknown = researcher_client.post(
        reverse("study_withdraw", args=[study.pk]), {"by": "prolific_pid", "who": "nobody"}
    )
    assert unknown.status_code == 302 and Withdrawal.objects.count() == 1
    again = researcher_client.post(url, withdraw, follow=True)
    assert "Nothing withdrawn: this participant was already withdrawn." in again.content.decode()
    assert Withdrawal.objects.count() == 1


@pytest.mark.django_db
def test_withdrawal_confirmation_counts_answers_in_words(researcher_client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=2)
    person = participant_start(study=study, prolific_pid="p1")
    first = person.trials.order_by("position").first()
    trial_answer(participant=person, position=first.position, answer="ai", rt_ms=500)
    page = researcher_client.post(
        reverse("study_withdraw", args=[study.pk]), {"by": "public_id", "who": person.public_id}
    ).content.decode()
    assert f"Withdraw participant {person.pk}'s 1 answer?" in page
    assert "Their 2 trials (1 answered)" in page


@pytest.mark.django_db
def test_withdrawal_by_the_participant_number_of_the_downloads(researcher_client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=2)
    other_study = open_study(runs[:1], owner=runs[0].owner, images_per_participant=2)
    person = participant_start(study=study, prolific_pid="p1")
    stranger = participant_start(study=other_study, prolific_pid="p2")
    detail = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert '<option value="number">participant number</option>' in detail
    url = reverse("study_withdraw", args=[study.pk])
    trials = Trial.objects.count()
    with CaptureQueriesContext(connection) as queries:
        confirm = researcher_client.post(url, {"who": str(person.pk)})  # by: any of them
    page = confirm.content.decode()
    assert confirm.status_code == 200
    assert (
        f"Participant number {person.pk} in the downloads (participant id "
        f"<code>{person.public_id}</code>). PROLIFIC_PID <code>p1</code>"
    ) in page
    assert 'name="by" value="number"' in page and f'name="who" value="{person.pk}"' in page
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert Trial.objects.count() == trials and not Withdrawal.objects.exists()

    refused = {
        str(stranger.pk): f"no participant of this study has number {stranger.pk}",
        "12.5": "“12.5” is not a participant number",
    }
    for who, words in refused.items():
        response = researcher_client.post(url, {"by": "number", "who": who}, follow=True)
        assert f"Nothing withdrawn: {words}" in response.content.decode()
    twin = participant_start(study=study, prolific_pid=str(person.pk))
    response = researcher_client.post(url, {"by": "any", "who": str(person.pk)}, follow=True)
    assert f"“{person.pk}” is ambiguous: it is participant number {person.pk} and" in (
        response.content.decode()
    )
    assert not Withdrawal.objects.exists() and stranger.trials.exists()

    done = researcher_client.post(
        url, {"by": "number", "who": str(person.pk), "confirm": "yes"}, follow=True
    ).content.decode()
    assert f"Withdrawn: participant number {person.pk}, " in done
    assert f'<td class="num">{person.pk}</td><td><code>{person.public_id}</code></td>' in done
    logged = Withdrawal.objects.get()
    assert (logged.participant_number, logged.participant_public_id) == (
        person.pk,
        person.public_id,
    )
    assert not person.trials.exists() and twin.trials.exists() and stranger.trials.exists()
    # A log written before the number was kept gets it from the participant's row, which stays.
    Withdrawal.objects.update(participant_number=None)
    migration = importlib.import_module("survey.migrations.0023_withdrawal_participant_number")
    migration.number_earlier_withdrawals(django_apps, None)
    assert Withdrawal.objects.get().participant_number == person.pk


@pytest.mark.django_db
def test_stimuli_grid_shows_every_stimulus_with_its_exposures(researcher_client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=2)
    for i in range(3):
        participant_start(study=study, prolific_pid=f"p{i}")
    page = researcher_client.get(reverse("study_stimuli", args=[study.pk])).content.decode()
    stimuli = Stimulus.objects.filter(study=study)
    for s in stimuli:
        assert reverse("study_stimulus_image", args=[s.pk]) in page
    assert sum(s.exposures for s in stimuli) == 3 * 2
    assert page.count("exposure") >= stimuli.count()


@pytest.mark.django_db
def test_a_within_subjects_monitor_has_one_row_for_all_conditions(researcher_client, runs):
    study = open_study(
        runs, owner=runs[0].owner, images_per_participant=2, design=Study.Design.WITHIN
    )
    participant_start(study=study, prolific_pid="p0")
    rows = researcher_client.get(reverse("study_monitor", args=[study.pk])).json()["rows"]
    assert [(r["label"], r["started"]) for r in rows] == [(None, 1)]  # the page names it
    page = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "<td>all conditions</td>" in page


@pytest.mark.django_db
def test_a_preparing_study_offers_to_send_its_preparation_again(researcher_client, runs):
    study = study_create(name="stuck", runs=runs, user=runs[0].owner)
    for open_after, action in ((True, "study_open"), (False, "study_prepare")):
        Study.objects.filter(pk=study.pk).update(
            status=Study.Status.PREPARING, open_after_preparation=open_after
        )
        page = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
        assert "Send the preparation again" in page
        assert f'action="{reverse(action, args=[study.pk])}"' in page


@pytest.mark.django_db
def test_the_default_consent_text_says_what_is_stored(client, runs):
    study = open_study(runs, owner=runs[0].owner, images_per_participant=2, estimated_minutes=1)
    page = client.get(reverse("study_landing", args=[study.slug])).content.decode()
    assert "anonymously" not in page
    assert "stored with your Prolific ID and a description of your browser" in page
    assert "pseudonymous, not anonymous" in page and "It takes about 1 minute." in page
    # How to stop, truly: closing the page keeps the place for the time limit (5 minutes).
    assert "You may stop at any time with “Stop taking part” at the bottom" in page
    assert "if you only close the page, your place is kept for you for 5 minutes." in page
    assert "by closing the page" not in page
    study.consent_text = "Own text."
    study.save()
    page = client.get(reverse("study_landing", args=[study.slug])).content.decode()
    assert "Own text." in page and "pseudonymous" not in page


@pytest.mark.django_db
def test_the_analysis_plan_is_set_in_the_form_and_absurd_values_are_refused(
    researcher_client, runs
):
    """Margin δ, α and the hypotheses: stored, shown, defaults when left empty, and values
    no analysis could use refused beside their field."""
    url = reverse("study_new")
    for field, value, words in [
        ("equivalence_margin", "0.5", "less than or equal to 0.45"),
        ("equivalence_margin", "-0.1", "greater than or equal to 0.005"),
        ("alpha", "0.9", "less than or equal to 0.2"),
        ("alpha", "abc", "Enter a number"),
    ]:
        page = researcher_client.post(url, {**_form(runs), field: value})
        assert page.status_code == 200 and words in page.content.decode(), (field, value)
    assert not Study.objects.exists()
    researcher_client.post(url, {**_form(runs), "equivalence_margin": "", "alpha": ""})
    assert (Study.objects.get().equivalence_margin, Study.objects.get().alpha) == (0.05, 0.05)
    Study.objects.all().delete()
    plan = {"equivalence_margin": "0.1", "alpha": "0.01", "hypotheses": "H1: 0.5 ± δ"}
    researcher_client.post(url, {**_form(runs), **plan})
    study = Study.objects.get()
    assert (study.equivalence_margin, study.alpha, study.hypotheses) == (0.1, 0.01, "H1: 0.5 ± δ")
    page = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "within 0.5 ± 0.1, α = 0.01" in page and "H1: 0.5 ± δ" in page


@pytest.mark.django_db
def test_the_prolific_link_starts_a_participation_with_prolifics_ids(researcher_client, runs):
    """The study page's Prolific link, its placeholders filled in as Prolific does, keeps the
    three ids on the participation."""
    import html
    import re

    from django.test import Client

    study = open_study(runs, owner=runs[0].owner, images_per_participant=2)
    page = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    link = html.unescape(re.search(r'id="prolific-link" readonly value="([^"]+)"', page)[1])
    assert link.endswith(
        "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )
    filled = (
        link.replace("{{%PROLIFIC_PID%}}", "5f0c1e2d3b4a59687a8b9c0d")
        .replace("{{%STUDY_ID%}}", "6a1b2c3d4e5f60718293a4b5")
        .replace("{{%SESSION_ID%}}", "7b2c3d4e5f60718293a4b5c6")
    )
    path, query = filled.split("://", 1)[1].split("/", 1)[1].split("?")
    participant = Client()
    landing = participant.get(f"/{path}?{query}")
    assert landing.status_code == 200
    hidden = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', landing.content.decode())
    )
    started = participant.post(f"/{path}?{query}", {**hidden, "consent": "yes"})
    assert started.status_code == 302
    (p,) = Participant.objects.filter(study=study)
    assert (p.prolific_pid, p.prolific_study_id, p.prolific_session_id) == (
        "5f0c1e2d3b4a59687a8b9c0d",
        "6a1b2c3d4e5f60718293a4b5",
        "7b2c3d4e5f60718293a4b5c6",
    )


@pytest.mark.django_db
def test_a_study_prepared_before_pixels_were_served_gets_the_pngs_length(runs):
    """Its stimulus_bytes was the longest JPEG's; the served PNGs are longer: the migration
    sets it to the longest served image, so that every image is again one length."""
    from survey.services.stimuli import served_length

    study = open_study(runs, owner=runs[0].owner, images_per_participant=2)
    Study.objects.filter(pk=study.pk).update(stimulus_bytes=100)
    migration = importlib.import_module("survey.migrations.0024_stimulus_bytes_served_as_pixels")
    migration.served_lengths(django_apps, None)
    sizes = set(Stimulus.objects.filter(study=study).values_list("width", "height"))
    study.refresh_from_db()
    assert study.stimulus_bytes == max(served_length(w, h) for w, h in sizes) > 100


@pytest.mark.django_db
def test_stimuli_larger_than_the_limit_are_brought_down_photograph_and_colourisation_alike(
    runs, monkeypatch
):
    """A participant is sent a stimulus's pixels uncompressed: one larger than the limit
    (here 16 px against the runs' 32) is scaled down, and a scene's versions stay one size."""
    from survey.services import stimuli

    monkeypatch.setattr(stimuli, "STIMULUS_MAX_SIDE", 16)
    study = open_study(runs, owner=runs[0].owner, images_per_participant=2)
    sizes = set(Stimulus.objects.filter(study=study).values_list("width", "height"))
    assert sizes == {(16, 16)}
    study.refresh_from_db()
    from survey.services.stimuli import served_length

    assert study.stimulus_bytes == served_length(16, 16)
