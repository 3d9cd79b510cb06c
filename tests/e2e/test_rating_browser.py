"""A participant takes a rating study (ITU-T P.910 ACR, survey.rating_protocol) in a real
browser, by keyboard alone on a 390 px phone screen: the five buttons and the image fit
the screen, the digit keys 1–5 answer, an instructed check names the score to give in
place of the question, a reload resumes at the trial at hand, every page
passes axe-core's WCAG 2.0/2.1 A and AA rules, and every rating is stored once, in order.
The researcher's analysis page of the finished study passes axe-core at 1280 and 390 px."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.models import Participant, Study, Trial
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.keyboard_hints import assert_instruction_hints
from tests.e2e.test_paired_browser import axe_clean, in_view
from tests.e2e.widths import too_wide_tables
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

#: The ratings given, trial by trial (1 practice + 4 measured images + 1 instructed check,
#: whose score is the one it asks for).
SCORES = [3, 5, 1, 4, 2, 4]
LABELS = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=64)
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run],
        labels=["Warm"],
        protocol=Study.Protocol.RATING,
        design=Study.Design.WITHIN,
        images_per_participant=4,
        practice_trials=1,
        instructed_checks=1,
        target_participants_per_condition=10,
    )


def test_a_rating_study_by_keyboard_on_a_phone(open_page, study, shoot):
    page = open_page(**PHONE)
    page.set_default_navigation_timeout(60_000)  # a loaded test machine: no timing asserted
    page.goto(f"/s/{study.slug}/")
    page.keyboard.press("Tab")
    expect(page.get_by_label("I have read the above and agree to take part.")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/p/*/")
    public_id = page.url.rstrip("/").split("/")[-1]
    expect(page.locator("#instructions")).to_contain_text("Rate the quality of each image")
    assert_instruction_hints(page, "Answer with the buttons under the image.")
    shoot(page, "rating-390-instructions")
    axe_clean(page, "rating instructions")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Begin")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#trial")).to_be_visible()
    planned = {t.position: t for t in Trial.objects.filter(participant__public_id=public_id)}
    given = []
    for position, score in enumerate(SCORES, start=1):
        check = planned[position]
        question = page.locator('#trial-question [data-f="question"]')
        if check.kind == "instructed":  # the score to give, in place of the question
            score = check.instructed_rating
            words = f"For this image, please answer {LABELS[score]} ({score})."
            expect(page.locator('#trial-question [data-f="instruction"]')).to_have_text(words)
            expect(question).to_be_hidden()
            shoot(page, "rating-390-instructed-check")
        else:
            expect(question).to_have_text("How would you rate the quality of this image?")
        given.append(score)
        if position == 3:
            # A reload resumes at the trial at hand; here the one a plain-form answer that
            # could not be stored comes back to, with the message saying so.
            page.goto(f"/p/{public_id}/?not_stored=1")
            expect(page.locator("#trial")).to_be_visible()
            alert = page.get_by_role("alert")
            expect(alert).to_have_text(
                "Your last answer could not be stored. Please answer the image shown here."
            )
            in_view(page, alert, "the message")
            assert page.url.endswith(f"/p/{public_id}/")  # a reload does not say it again
            shoot(page, "rating-390-not-stored")
            axe_clean(page, "rating trial after an answer not stored")
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        if position == 4:  # the answer after the message was stored: the message is gone
            expect(page.get_by_role("alert")).to_have_count(0)
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        in_view(page, page.locator("#stimulus"), "the image")
        for label in LABELS.values():
            in_view(page, page.get_by_role("button", name=label), f"the {label} button")
        if position == 2:
            shoot(page, "rating-390-trial")
            axe_clean(page, "rating trial")
        page.wait_for_timeout(25)  # a person takes a moment: the response time is > 0
        with page.expect_response(lambda r: r.url.endswith("/answer")) as sent:
            page.keyboard.press(str(score))
        assert sent.value.status == 200
    page.wait_for_url(f"**/p/{public_id}/done/")
    expect(page.get_by_test_id("completion-code")).to_have_text(study.completion_code)
    participant = Participant.objects.get(public_id=public_id)
    rows = list(
        Trial.objects.filter(participant=participant)
        .order_by("position")
        .values_list("answer", "rating", "rt_ms")
    )
    assert [r[1] for r in rows] == given
    assert all(answer == "acr" and 0 < rt < 60_000 for answer, _, rt in rows)
    assert participant.completed_at is not None


def test_the_analysis_page_of_a_rating_study_passes_axe(open_page, study, shoot):
    now = timezone.now()
    stimuli = list(study.stimuli.filter(role="main")[:4])
    for i in range(3):
        person = Participant.objects.create(study=study, completed_at=now)
        for k, stimulus in enumerate(stimuli):
            Trial.objects.create(
                participant=person,
                position=k + 1,
                stimulus=stimulus,
                answer="acr",
                rating=1 + (i + k) % 5,
                rt_ms=900,
            )
    researcher_create(username="ada", password="a-long-Passphrase-1", staff=True)
    for size, options in (("1280", DESKTOP), ("390", PHONE)):
        page = open_page(**options)
        page.goto("/accounts/login/")
        page.fill("#id_username", "ada")
        page.fill("#id_password", "a-long-Passphrase-1")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/studies/{study.pk}/analysis/")
        expect(page.get_by_role("heading", name="Mean opinion scores")).to_be_visible()
        expect(page.locator("#mos-table")).to_contain_text("Real photographs")
        shoot(page, f"rating-{size}-analysis")
        axe_clean(page, f"rating analysis {size}")
        if size == "390":
            continue
        assert too_wide_tables(page) == {}
        # The preview at 1280 px: rated by mouse, no feedback after the practice image, a
        # mean at the end.
        page.goto(f"/studies/{study.pk}/preview/")
        page.get_by_role("button", name="I agree: continue").click()
        page.get_by_role("button", name="Begin").click()
        kinds = [
            t["kind"]
            for t in page.evaluate(
                "JSON.parse(document.getElementById('preview-trials').textContent)"
            )
        ]
        measured = [score for score, kind in zip(SCORES, kinds, strict=True) if kind == "main"]
        for position, score in enumerate(SCORES, start=1):
            expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
            page.wait_for_function("() => !document.querySelector('button.answer').disabled")
            if position == 2:
                shoot(page, "rating-1280-preview-trial")
            page.get_by_role("button", name=LABELS[score], exact=True).click()
            expect(page.locator("#feedback")).to_be_hidden()
        expect(page.locator("#preview-done")).to_be_visible()
        expect(page.locator("[data-f=preview-score]")).to_contain_text(
            "You rated 4 measured images (practice left out): mean rating "
            f"{sum(measured) / len(measured):.2f}."
        )
