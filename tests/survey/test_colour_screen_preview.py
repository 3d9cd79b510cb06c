"""The colour-vision screen in the researcher's preview (survey.views.colour_screen's
study_preview_screen): after the consent the preview shows the participants' plate pages,
answered by GETs that store nothing, then the instructions and the trials."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey import colour_screen as cs
from survey.models import ColourScreenAnswer, Participant, Study, Trial
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)", re.IGNORECASE)


def _study(tmp_path, owner, **fields) -> Study:
    dataset = tiny_dataset("syn", per_category=10, size=48)
    run = uploaded_run(dataset, tmp_path, name="warm")
    study = open_study([run], images_per_participant=2, **fields)
    Study.objects.filter(pk=study.pk).update(owner=owner)
    return study


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


def _stored() -> tuple[int, int, int]:
    return Participant.objects.count(), Trial.objects.count(), ColourScreenAnswer.objects.count()


def test_the_preview_goes_through_every_plate_and_stores_nothing(client, ada, tmp_path):
    study = _study(tmp_path, ada, colour_screen=True)
    before = _stored()
    preview = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    screen = reverse("study_preview_screen", args=[study.pk])
    assert re.search(f'href="{screen}(\\?condition=\\d+)?"', preview)  # "I agree: continue"
    with CaptureQueriesContext(connection) as queries:
        start = client.get(screen)
        assert start.status_code == 302
        seed = int(parse_qs(urlsplit(start["Location"]).query)["seed"][0])
        plates = cs.screen_plates(seed)
        url = start["Location"]
        for plate in plates:
            page = client.get(url)
            assert page.status_code == 200
            html = page.content.decode()
            assert f"Plate {plate.position} of {cs.PLATES}" in html
            assert "Which number do you see?" in html and "I can't see a number" in html
            assert f"This plate: {plate.kind}, its number {plate.digit}." in html
            assert "nothing you answer here is recorded" in html
            assert 'method="get"' in html and "Stop taking part" not in html
            image = re.search(r'<img src="([^"]+)"', html).group(1)
            png = client.get(image)
            assert png["Content-Type"] == "image/png"
            assert b"".join(png.streaming_content if png.streaming else [png.content]) == (
                cs.plate_png(plate)
            )
            answered = client.get(
                screen, {"seed": seed, "position": plate.position, "answer": str(plate.digit)}
            )
            assert answered.status_code == 302
            url = answered["Location"]
    assert not [q["sql"] for q in queries.captured_queries if WRITES.match(q["sql"])]
    assert url == f"{reverse('study_preview', args=[study.pk])}?screened=1"  # no condition asked
    back = client.get(url).content.decode()
    assert re.search(r'<section id="consent"[^>]* hidden>', back)
    assert not re.search(r'<section id="instructions"[^>]*hidden', back)
    assert _stored() == before


def test_an_empty_answer_shows_the_participants_error_on_the_same_plate(client, ada, tmp_path):
    study = _study(tmp_path, ada, colour_screen=True)
    screen = reverse("study_preview_screen", args=[study.pk])
    page = client.get(screen, {"seed": 5, "position": 3, "answer": " "})
    assert page.status_code == 400
    html = page.content.decode()
    assert "Please type the number you see" in html and f"Plate 3 of {cs.PLATES}" in html
    cannot = client.get(screen, {"seed": 5, "position": 3, "cannot_see": "1"})
    assert cannot["Location"].endswith("plate=4")


def test_the_condition_chosen_is_kept_through_the_screen(client, ada, tmp_path):
    study = _study(tmp_path, ada, colour_screen=True)
    condition = study.conditions.first()
    preview = client.get(reverse("study_preview", args=[study.pk]), {"condition": condition.pk})
    screen = reverse("study_preview_screen", args=[study.pk])
    assert f'href="{screen}?condition={condition.pk}"' in preview.content.decode()
    last = client.get(
        screen,
        {"seed": 5, "position": cs.PLATES, "answer": "4", "condition": condition.pk},
    )
    assert last["Location"] == (
        f"{reverse('study_preview', args=[study.pk])}?condition={condition.pk}&screened=1"
    )


def test_without_the_screen_the_preview_is_as_before(client, ada, tmp_path):
    study = _study(tmp_path, ada)
    preview = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    assert 'data-step="instructions"' in preview and "preview/screen" not in preview
    screen = reverse("study_preview_screen", args=[study.pk])
    assert client.get(screen)["Location"] == reverse("study_preview", args=[study.pk])
    plate = reverse("study_preview_screen_plate", args=[study.pk, 5, 1])
    assert client.get(plate).status_code == 404


def test_other_researchers_see_neither_the_pages_nor_the_plates(client, ada, tmp_path):
    study = _study(tmp_path, ada, colour_screen=True)
    bob = researcher_create(username="bob", password="a-long-Passphrase-2")
    client.force_login(bob)
    for url in (
        reverse("study_preview_screen", args=[study.pk]) + "?seed=5&plate=1",
        reverse("study_preview_screen_plate", args=[study.pk, 5, 1]),
    ):
        assert client.get(url).status_code in (403, 404)
    client.logout()
    assert client.get(reverse("study_preview_screen_plate", args=[study.pk, 5, 1])).status_code in (
        302,
        403,
    )
