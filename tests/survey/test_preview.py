"""The preview shows what participants see: a chosen condition's images, the consent text
that will be used (the default one when the study has none), the instructed checks'
instructions, the completion page with the code (and the redirect with the code filled
in), and a link back to the study; it records nothing."""

from __future__ import annotations

import json
import random

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Participant, Stimulus, Study, Trial
from survey.services.stimuli import study_prepare_stimuli
from survey.services.studies import study_create
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

DEFAULT_CONSENT = "You will see a series of images, one at a time"


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


@pytest.fixture
def runs(tmp_path, ada):
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    return [
        uploaded_run(dataset, tmp_path, name="warm", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool", style="cool", owner=ada),
    ]


def _prepared(runs, ada, **fields) -> Study:
    study = study_create(
        name="study",
        runs=runs,
        user=ada,
        labels=["Warm label", "Cool label"],
        images_per_participant=2,
        practice_trials=1,
        **fields,
    )
    study_prepare_stimuli(study=study, rng=random.Random(0))
    return study


def _trials(html: str) -> list[dict]:
    return json.loads(html.split('id="preview-trials" type="application/json">')[1].split("<")[0])


def _conditions(trials) -> set:
    """The conditions of the AI images a preview shows."""
    ids = [int(t["image_url"].rstrip(".jpg").rsplit("/", 1)[1]) for t in trials]
    return set(
        Stimulus.objects.filter(pk__in=ids, is_real=False).values_list(
            "condition__label", flat=True
        )
    )


def test_the_researcher_chooses_the_condition(client, runs, ada):
    study = _prepared(runs, ada)
    warm, cool = study.conditions.order_by("pk")
    url = reverse("study_preview", args=[study.pk])
    for condition in (warm, cool, cool):
        page = client.get(url, {"condition": condition.pk})
        html = page.content.decode()
        assert _conditions(_trials(html)) == {condition.label}
        assert f'<option value="{condition.pk}" selected>' in html
        assert f"Preview of condition <strong>{condition.label}</strong>" in html
    # An unknown or foreign condition is not an error: one is chosen at random.
    for raw in ("999999", "x", ""):
        page = client.get(url, {"condition": raw})
        assert page.status_code == 200
        assert len(_conditions(_trials(page.content.decode()))) == 1
    assert not Participant.objects.exists() and not Trial.objects.exists()


def test_within_subjects_there_is_no_condition_to_choose(client, runs, ada):
    study = _prepared(runs, ada, design=Study.Design.WITHIN)
    html = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    assert 'name="condition"' not in html and "Preview:" in html


def test_the_default_consent_text_is_shown_when_the_study_has_none(client, runs, ada):
    study = _prepared(runs, ada)
    url = reverse("study_preview", args=[study.pk])
    html = client.get(url).content.decode()
    assert DEFAULT_CONSENT in html and "the study has no consent text of its own" in html
    landing_text = "It takes about 5 minutes."
    assert landing_text in html  # the same words as on the participants' landing page
    study.consent_text = "Our own consent, version 2."
    study.save(update_fields=["consent_text"])
    html = client.get(url).content.decode()
    assert "Our own consent, version 2." in html and DEFAULT_CONSENT not in html


def test_the_completion_page_has_the_code_and_the_redirect_filled_in(client, runs, ada):
    study = _prepared(runs, ada, redirect_url="https://app.prolific.com/c?cc={code}")
    html = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    done = html.split('id="preview-done"')[1]
    assert f'data-testid="completion-code" dir="ltr">{study.completion_code}<' in done
    assert f'href="https://app.prolific.com/c?cc={study.completion_code}"' in done
    assert "{code}" not in done


def test_the_preview_links_back_to_the_study(client, runs, ada):
    study = _prepared(runs, ada)
    html = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    back = f'<a href="{reverse("study_detail", args=[study.pk])}">Back to the study</a>'
    assert html.count(back) == 2  # at the top and on the completion page


def test_instructed_checks_show_their_instruction_in_the_preview(client, runs, ada):
    study = _prepared(runs, ada, instructed_checks=2)
    trials = _trials(client.get(reverse("study_preview", args=[study.pk])).content.decode())
    checks = [t for t in trials if t["kind"] == "instructed"]
    assert len(checks) == 2
    for t in checks:
        assert t["instruction"] in (
            "For this image, please answer Real.",
            "For this image, please answer AI.",
        )
    assert all(t["instruction"] == "" for t in trials if t["kind"] != "instructed")
