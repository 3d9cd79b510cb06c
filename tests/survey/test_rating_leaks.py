"""The hidden-participant tests of tests/survey/test_leaks.py, run for a rating study
(survey.rating_protocol): nothing a participant's browser receives tells a real
photograph (the hidden reference) from a colourisation, names the condition or the
scene; and the page and JSON of a photograph and of a colourisation differ only in
numbers."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from survey.models import Stimulus, Study, Trial
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

# The same tests, collected here with this module's ``taken`` (a rating study).
from tests.survey.test_leaks import (  # noqa: F401
    test_even_the_bytes_before_the_padding_tell_nothing,
    test_every_image_has_the_same_byte_length_and_headers,
    test_image_urls_name_only_the_participants_trial_position,
    test_pages_and_json_name_no_condition_scene_file_or_truth,
    test_serving_changes_no_pixel,
    test_stimulus_files_are_not_served_from_media_or_to_other_participants,
)

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(params=["en", "fr"])
def taken(client, tmp_path, request):
    """A participant who rated a whole rating study (two conditions between subjects,
    practice), with every response their browser received."""
    dataset = tiny_dataset("syn", per_category=20, size=32)
    warm = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    cool = uploaded_run(dataset, tmp_path, name="secret-run-cool", style="cool")
    study = open_study(
        [warm, cool],
        labels=["LabelWarmCondition", "LabelCoolCondition"],
        protocol=Study.Protocol.RATING,
        images_per_participant=6,
        practice_trials=2,
        language=request.param,
    )
    responses = [client.get(reverse("study_landing", args=[study.slug]))]
    started = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    public_id = started["Location"].split("/")[2]
    responses.append(client.get(started["Location"]))
    trials = list(
        Trial.objects.filter(participant__public_id=public_id)
        .select_related("stimulus")
        .order_by("position")
    )
    pages, answers, images = {}, {}, {}
    for trial in trials:
        pages[trial.position] = client.get(started["Location"], {"begin": "1"})
        images[trial.position] = client.get(
            reverse("participant_image", args=[public_id, trial.position])
        )
        answers[trial.position] = client.post(
            reverse("participant_answer", args=[public_id]),
            {"position": trial.position, "answer": "3", "rt_ms": 600},
            **JSON,
        )
    responses += [*pages.values(), *answers.values()]
    return study, trials, responses, pages, answers, images


def test_every_answer_was_stored_as_a_rating(taken):
    _, trials, *_ = taken
    assert {(t.answer, t.rating) for t in Trial.objects.filter(pk__in=[t.pk for t in trials])} == {
        ("acr", 3)
    }


def test_a_photograph_and_a_colourisation_look_the_same_but_for_numbers(taken):
    study, trials, _, pages, answers, _ = taken
    main = [t for t in trials if t.kind == Stimulus.Role.MAIN]
    real = next(t.position for t in main if t.stimulus.is_real)
    fake = next(t.position for t in main if not t.stimulus.is_real)

    def skeleton(position):
        html = pages[position].content.decode()
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        html = re.sub(r'\s*data-preload="[^"]*"', "", html)
        return re.sub(r"\d+", "#", html)

    assert skeleton(real) == skeleton(fake)
    for position in (real, fake):
        data = answers[position].json()
        assert data["feedback"] is None and data["stored"]["answer"] == "3"
        if data["next"] is not None:
            assert set(data["next"]) == {
                "position",
                "total",
                "answered",
                "practice",
                "image_url",
                "instruction",
            }
