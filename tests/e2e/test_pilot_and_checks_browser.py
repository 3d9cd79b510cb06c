"""In a real browser, at a desktop's and a phone's width: an instructed-response check
shows its instruction in place of the question and is answered as asked; the preview is
walked from the condition chooser and the default consent to the completion page with its
code; the pilot's pages (the study, the removal's confirmation, the participant list) and
the study form. Every one of these pages passes axe-core's WCAG 2.0/2.1 A and AA rules;
screenshots go to ``E2E_SCREENSHOTS`` when set."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.models import Participant, Trial
from survey.services.stimuli import study_prepare_stimuli
from survey.services.studies import study_create, study_open, study_open_pilot
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import DESKTOP, PHONE
from tests.survey.analysis_helpers import take_part
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"desktop": DESKTOP, "phone": PHONE}
ASKED = {"real": "For this image, please answer Real.", "ai": "For this image, please answer AI."}


def check(page, name: str, shoot) -> None:
    """Screenshot (full page) and axe-core: no violation of WCAG 2.0/2.1 A or AA."""
    shoot(page, name)
    violations = axe_violations(page)
    assert not violations, (name, violations)


@pytest.fixture
def shoot():
    folder = os.environ.get("E2E_SCREENSHOTS")

    def take(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def ada():
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def study(tmp_path, ada):
    """A prepared draft with two conditions, a practice trial, an attention check and two
    instructed-response checks."""
    dataset = tiny_dataset("syn", per_category=20, size=64, owner=ada)  # 12 test scenes
    runs = [
        uploaded_run(dataset, tmp_path, name="warm", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool", style="cool", owner=ada),
    ]
    study = study_create(
        name="Pilot study",
        runs=runs,
        user=ada,
        labels=["Warm", "Cool"],
        images_per_participant=4,
        practice_trials=1,
        attention_checks=1,
        instructed_checks=2,
        redirect_url="https://app.prolific.com/submissions/complete?cc={code}",
    )
    study_prepare_stimuli(study=study, rng=random.Random(0))
    return study


def _logged_in(open_page, user, live_server, size):
    client = Client()
    client.force_login(user)
    page = open_page(**SIZES[size])
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    return page


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_an_instructed_check_shows_its_instruction_in_place_of_the_question(
    open_page, study, shoot, size
):
    study = study_open_pilot(study=study)
    page = open_page(**SIZES[size])
    page.goto(f"/s/{study.slug}/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start the study").click()
    page.wait_for_url("**/p/*/")
    participant = Participant.objects.get()
    expect(page.get_by_text("come with an instruction that says which answer")).to_be_visible()
    page.get_by_role("button", name="Begin").click()
    trials = list(Trial.objects.filter(participant=participant).order_by("position"))
    question = page.locator("#trial-question")
    shot = False
    for trial in trials:
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(trial.position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        if trial.kind == "instructed":
            expect(question).to_have_text(ASKED[trial.instructed_answer], use_inner_text=True)
            expect(page.get_by_role("heading", name=ASKED[trial.instructed_answer])).to_be_visible()
            if not shot:
                check(page, f"{size}-instructed-trial", shoot)
                shot = True
            value = trial.instructed_answer
        else:
            expect(question).to_have_text(
                "Real photograph, or colourised by AI?", use_inner_text=True
            )
            value = "ai" if trial.kind == "attention" else "real"
        page.get_by_role("button", name={"real": "Real", "ai": "AI"}[value], exact=True).click()
        if trial.kind == "practice":
            page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/done/")
    stored = dict(
        Trial.objects.filter(kind="instructed").values_list("answer", "instructed_answer")
    )
    assert all(answer == asked for answer, asked in stored.items())


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_preview_from_the_condition_to_the_completion_code(
    open_page, live_server, study, ada, shoot, size
):
    page = _logged_in(open_page, ada, live_server, size)
    cool = study.conditions.get(label="Cool")
    page.goto(f"/studies/{study.pk}/preview/")
    page.get_by_label("Condition").select_option(label="Cool")
    page.get_by_role("button", name="Preview this condition").click()
    expect(page.locator(".preview-banner").first).to_contain_text("Preview of condition Cool")
    assert page.url.endswith(f"?condition={cool.pk}")
    expect(page.get_by_text("You will see a series of images, one at a time")).to_be_visible()
    check(page, f"{size}-preview-consent", shoot)
    page.get_by_role("button", name="I agree: continue").click()
    page.get_by_role("button", name="Begin").click()
    total = study.trials_per_participant
    for position in range(1, total + 1):
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        page.get_by_role("button", name="Real", exact=True).click()
        go_on = page.get_by_role("button", name="Continue")
        if position == 1:
            go_on.click()
    code = page.get_by_test_id("completion-code")
    expect(code).to_have_text(study.completion_code)
    expect(page.get_by_role("link", name="continue here")).to_have_attribute(
        "href", f"https://app.prolific.com/submissions/complete?cc={study.completion_code}"
    )
    check(page, f"{size}-preview-done", shoot)
    page.get_by_role("link", name="Back to the study").last.click()
    page.wait_for_url(f"**/studies/{study.pk}/")
    assert not Participant.objects.exists()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_pilot_pages(open_page, live_server, study, ada, shoot, size):
    page = _logged_in(open_page, ada, live_server, size)
    page.goto(f"/studies/{study.pk}/edit/")
    expect(page.get_by_label("Instructed-response checks")).to_have_value("2")
    check(page, f"{size}-study-form", shoot)
    page.goto(f"/studies/{study.pk}/")
    page.get_by_role("button", name="Open as pilot").click()
    expect(page.get_by_text("Open as a pilot.", exact=False).first).to_be_visible()
    study = study_open_pilot(study=study)
    take_part(study, 0, instructed_failures=2)
    take_part(study, 1, stop_after=2)
    Participant.objects.filter(completed_at__isnull=False).update(prolific_pid=f"{7:024x}")
    page.reload()
    expect(page.locator('[data-f="pilot"]').first).to_have_text("1")
    check(page, f"{size}-study-pilot", shoot)
    page.goto(f"/studies/{study.pk}/participants/")
    expect(page.locator(".status-pilot").first).to_be_visible()
    check(page, f"{size}-participants-pilot", shoot)
    page.goto(f"/studies/{study.pk}/")
    page.get_by_role("button", name="Remove pilot data").click()
    expect(page.get_by_role("heading", name="Remove the pilot data?")).to_be_visible()
    check(page, f"{size}-pilot-remove-confirm", shoot)
    page.get_by_role("button", name="Delete the pilot data").click()
    expect(page.get_by_text("Pilot data removed: 2 participations")).to_be_visible()
    assert not Participant.objects.exists()
    expect(page.get_by_role("button", name="Open as pilot")).to_be_visible()  # a draft again
    # Opened for real: the dashboard says how instructed checks count.
    study = study_open(study=study)
    for i in range(3):
        take_part(study, i, instructed_failures=i)
    page.goto(f"/studies/{study.pk}/analysis/")
    expect(page.get_by_text("Instructed-response checks (an ordinary image")).to_be_visible()
    check(page, f"{size}-analysis", shoot)
