"""HYPE_time over HTTP (survey.hype, survey.services.hype_exposure): the staircase runs on
the server from the stored answers, each trial's exposure is stored on it before it is
shown, a reload resumes with the same exposure, a repeated answer moves nothing, the
masks are served like the images and tell nothing, and a page without scripts is told
that the study needs them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from survey.hype import staircase
from survey.models import Study, Trial, TrialDisplay
from tests.survey.study_helpers import consent_start as start
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    return open_study(
        [run],
        labels=["LabelWarmCondition"],
        protocol=Study.Protocol.HYPE_TIME,
        images_per_participant=10,
        practice_trials=1,
        attention_checks=1,
    )


def trials_of(participant) -> list[Trial]:
    return list(
        Trial.objects.filter(participant=participant)
        .select_related("stimulus")
        .order_by("position")
    )


def truth(trial: Trial) -> str:
    return "real" if trial.stimulus.is_real else "ai"


def other(answer: str) -> str:
    return "ai" if answer == "real" else "real"


def answer(client, participant, position, value, **extra):
    return client.post(
        reverse("participant_answer", args=[participant.public_id]),
        {"position": position, "answer": value, "rt_ms": 700, "display": "{}"},
        **{**JSON, **extra},
    )


#: right (True) or wrong (False) for each main trial in order (the practice and attention
#: trials, at random places, are answered right): three right take the exposure down.
MAIN_PLAN = [True, True, True, False, True, True, True, True, True, False]


def test_each_exposure_follows_the_staircase_of_the_measured_answers(client, study):
    participant = start(client, study)
    trials = trials_of(participant)
    assert len(trials) == 12
    assert [t.exposure_ms for t in trials] == [500] + [None] * 11
    correct = []
    plan = iter(MAIN_PLAN)
    for t in trials:
        right = next(plan) if t.kind == "main" else True
        t.refresh_from_db()
        # Stored before the trial is shown: the staircase of the measured answers so far.
        assert t.exposure_ms == staircase(correct).next_ms, t.position
        data = answer(client, participant, t.position, truth(t) if right else other(truth(t)))
        data = data.json()
        if t.kind == "main":
            correct.append(right)
        if data["next"] is not None:
            assert data["next"]["exposure_ms"] == staircase(correct).next_ms
            assert len(data["next"]["mask_urls"]) == 4
    stored = [t.exposure_ms for t in trials_of(participant)]
    main = [t.exposure_ms for t in trials_of(participant) if t.kind == "main"]
    assert list(staircase(correct).exposures) == main
    assert min(stored) < 500  # it moved
    # The display's target is the trial's own exposure.
    targets = TrialDisplay.objects.filter(trial__participant=participant).values_list(
        "trial__exposure_ms", "target_ms"
    )
    assert all(a == b for a, b in targets)


def test_the_exposure_sequence_by_hand(client, study):
    """Every measured answer right: 500 for three, 400 for three, 300 ..., whatever the
    practice and attention trials (shown at the current exposure, moving nothing)."""
    participant = start(client, study)
    for t in trials_of(participant):
        answer(client, participant, t.position, "real" if t.kind == "attention" else truth(t))
    main = [t.exposure_ms for t in trials_of(participant) if t.kind == "main"]
    assert main == [500, 500, 500, 400, 400, 400, 300, 300, 300, 200]


def test_a_reload_resumes_with_the_stored_exposure_and_a_double_post_stores_once(client, study):
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    trials = trials_of(participant)
    first_wrong = next(t for t in trials if t.kind == "main")
    for t in trials[: first_wrong.position - 1]:
        answer(client, participant, t.position, truth(t))
    wrong = other(truth(first_wrong))
    one = answer(client, participant, first_wrong.position, wrong).json()
    two = answer(client, participant, first_wrong.position, truth(first_wrong)).json()
    assert one["next"]["exposure_ms"] == 600  # one wrong: one rung longer
    assert two["stored"]["answer"] == wrong and two["next"]["exposure_ms"] == 600
    for _ in range(2):  # a reload (twice): the same trial, the same exposure
        page = client.get(page_url, {"begin": "1"})
        assert page.context["trial"].position == first_wrong.position + 1
        assert page.context["trial"].exposure_ms == 600
        data = page.content.decode()
        assert '"exposure_ms": 600' in data
    assert Trial.objects.filter(participant=participant, answer__isnull=False).count() == (
        first_wrong.position
    )
    assert Trial.objects.get(pk=first_wrong.pk).answer == wrong


def test_a_plain_form_answer_is_refused_and_the_page_says_scripts_are_needed(client, study):
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    html = client.get(page_url, {"begin": "1"}).content.decode()
    assert "<noscript>" in html and "This study needs JavaScript" in html
    # No image in the page itself: only the script loads it, to time it.
    assert re.search(r'<img id="stimulus"[^>]* src=', html) is None
    response = client.post(
        reverse("participant_answer", args=[participant.public_id]),
        {"position": 1, "answer": "real"},
    )
    assert response.status_code == 302 and response["Location"] == page_url
    assert not Trial.objects.filter(participant=participant, answer__isnull=False).exists()


def test_masks_are_served_like_images_for_the_trial_at_hand_only(client, study):
    participant = start(client, study)
    pid = participant.public_id

    def mask(position, number, c=client):
        return c.get(reverse("participant_mask", args=[pid, position, number]))

    first = [mask(1, k) for k in range(1, 5)]
    assert all(r.status_code == 200 and r["Content-Type"] == "image/jpeg" for r in first)
    assert first[0]["Cache-Control"] == "private, no-store"
    assert len({r.content for r in first}) == 4  # four different masks
    assert mask(1, 5).status_code == 404 and mask(1, 0).status_code == 404
    assert mask(3, 1).status_code == 404  # not before its turn (beyond the next)
    assert mask(2, 1).status_code == 200  # the next trial's: preloaded
    from django.test import Client

    assert mask(1, 1, Client()).status_code == 404  # another browser
    t = trials_of(participant)[0]
    answer(client, participant, 1, truth(t))
    assert mask(1, 1).status_code == 404  # answered: gone


def test_a_study_of_another_protocol_serves_no_masks(client, tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="run")
    single = open_study([run], images_per_participant=4)
    participant = start(client, single)
    url = reverse("participant_mask", args=[participant.public_id, 1, 1])
    assert client.get(url).status_code == 404
    page = client.get(reverse("participant_page", args=[participant.public_id]), {"begin": "1"})
    assert "exposure_ms" not in page.context["trial"].as_dict()


def _flip_truth(participant) -> None:
    """Give every trial the other version of its scene, as if each image's truth were the
    opposite (the attention check's has none and is left)."""
    from survey.models import Stimulus

    for trial in Trial.objects.filter(participant=participant).select_related("stimulus"):
        s = trial.stimulus
        if s.role == Stimulus.Role.ATTENTION:
            continue
        twin = Stimulus.objects.get(
            study=s.study, scene=s.scene, role=s.role, is_real=not s.is_real, condition=s.condition
        )
        Trial.objects.filter(pk=trial.pk).update(stimulus=twin)


def test_the_page_json_and_masks_of_the_trial_at_hand_depend_on_no_truth(client, study):
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    trials = trials_of(participant)
    for t in trials[:3]:
        answer(client, participant, t.position, "real")

    def seen():
        page = client.get(page_url, {"begin": "1"}).content.decode()
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
        told = answer(client, participant, 3, "real").json()
        masks = [
            client.get(reverse("participant_mask", args=[participant.public_id, 4, k])).content
            for k in range(1, 5)
        ]
        image = client.get(reverse("participant_image", args=[participant.public_id, 4]))
        return page, told, masks, len(image.content)

    before = seen()
    _flip_truth(participant)
    assert seen() == before
    for word in ["LabelWarmCondition", "secret-run-warm", "attention", "is_real"]:
        assert word not in before[0] and word not in str(before[1]), word
