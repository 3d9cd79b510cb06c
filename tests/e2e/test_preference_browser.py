"""A participant takes a model-vs-model preference study (survey.preference_protocol) in a
real browser, by keyboard alone on a 390 px phone screen (F / J and the arrows): both
images and both answers fit the screen, "Which looks more natural?" is asked (in the
instructed-response check, "For this pair, please answer Left" or Right instead), no feedback
is given, every page passes axe-core's WCAG 2.0/2.1 A and AA rules, and every side chosen
is stored once, in order, with the run it names as the winner. The researcher's analysis
page passes axe-core too."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.models import Participant, Study, Trial
from tests.e2e.conftest import DESKTOP, PHONE, RESEARCHER_PASSWORD, log_in
from tests.e2e.keyboard_hints import assert_button_badges, assert_instruction_hints
from tests.e2e.test_paired_browser import KEYS, axe_clean, in_view
from tests.e2e.widths import too_wide_tables
from tests.survey.study_helpers import instructed_side, open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

CHOICES = ["left", "right", "right", "left", "right"]  # the check's: as it asks


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=64)  # 12 test scenes
    runs = [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]
    return open_study(
        runs,
        labels=["Warm", "Cool"],
        protocol=Study.Protocol.PREFERENCE,
        design=Study.Design.WITHIN,
        images_per_participant=len(CHOICES) - 1,
        instructed_checks=1,  # one pair says which side to choose
        target_participants_per_condition=10,
    )


def test_a_preference_study_by_keyboard_on_a_phone(open_page, study, shoot):
    page = open_page(**PHONE)
    page.set_default_navigation_timeout(60_000)  # a loaded test machine: no timing asserted
    page.goto(f"/s/{study.slug}/")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/p/*/")
    public_id = page.url.rstrip("/").split("/")[-1]
    expect(page.locator("#instructions")).to_contain_text("There is no right or wrong answer.")
    assert_instruction_hints(page, "Answer with the buttons under the images.")
    shoot(page, "preference-390-instructions")
    axe_clean(page, "preference instructions")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Begin")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#trial")).to_be_visible()
    expect(page.locator("#trial-question")).to_contain_text("Which looks more natural?")
    planned = {t.position: t for t in Trial.objects.filter(participant__public_id=public_id)}
    chosen = []
    for position, side in enumerate(CHOICES, start=1):
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        check = planned[position]
        if check.kind == "instructed":  # the instruction in place of the question
            side = instructed_side(check)
            words = f"For this pair, please answer {side.capitalize()}."
            expect(page.locator('#trial-question [data-f="instruction"]')).to_have_text(words)
            expect(page.locator('#trial-question [data-f="question"]')).to_be_hidden()
            shoot(page, "preference-390-instructed-check")
            axe_clean(page, "preference instructed check")
        else:
            expect(page.locator("#trial-question")).to_have_text("Which looks more natural?")
        chosen.append(side)
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        for image in ("#stimulus-left", "#stimulus-right"):
            in_view(page, page.locator(image), image)
        for name in ("Left", "Right"):
            in_view(page, page.get_by_role("button", name=name), f"the {name} button")
        if position == 2:
            assert_button_badges(page)
            shoot(page, "preference-390-trial")
            axe_clean(page, "preference trial")
        page.wait_for_timeout(25)  # a person takes a moment: the response time is > 0
        with page.expect_response(lambda r: r.url.endswith("/answer")) as sent:
            page.keyboard.press(KEYS[side][position % 2])
        assert sent.value.status == 200
        expect(page.locator("#feedback")).to_be_hidden()
    page.wait_for_url(f"**/p/{public_id}/done/")
    expect(page.get_by_test_id("completion-code")).to_have_text(study.completion_code)
    participant = Participant.objects.get(public_id=public_id)
    assert participant.completed_at is not None
    rows = list(
        Trial.objects.filter(participant=participant)
        .order_by("position")
        .select_related("stimulus__condition", "partner__condition")
    )
    assert [t.chosen_side for t in rows] == chosen
    check = next(t for t in rows if t.kind == "instructed")
    assert check.answer == check.instructed_answer  # passed
    for t in rows:
        chose_stimulus = t.chosen_side == t.fake_side
        assert t.answer == ("real" if chose_stimulus else "ai") and 0 < t.rt_ms < 60_000
    # The researcher's analysis page, at a desktop's width.
    ada = researcher_create(username="ada", password=RESEARCHER_PASSWORD)
    Study.objects.filter(pk=study.pk).update(owner=ada)
    desk = open_page(**DESKTOP)
    log_in(desk)
    desk.goto(reverse("study_analysis", args=[study.pk]))
    expect(desk.get_by_role("heading", name="Bradley–Terry scores per run")).to_be_visible()
    assert too_wide_tables(desk) == {}
    shoot(desk, "preference-1280-analysis")
    axe_clean(desk, "preference analysis")


def test_the_preview_of_a_preference_study_counts_choices_not_right_answers(
    open_page, study, shoot
):
    """A preference has no right answer: the preview's end says how many measured pairs
    were chosen and on which side, not a score."""
    ada = researcher_create(username="ada", password=RESEARCHER_PASSWORD)
    Study.objects.filter(pk=study.pk).update(owner=ada)
    page = open_page(**DESKTOP)
    log_in(page)
    page.goto(f"/studies/{study.pk}/preview/")
    page.get_by_role("button", name="I agree: continue").click()
    page.get_by_role("button", name="Begin").click()
    for position in range(1, len(CHOICES) + 1):
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        page.keyboard.press("f")
    expect(page.locator("#preview-done")).to_be_visible()
    score = page.locator("[data-f=preview-score]")
    expect(score).to_have_text(
        "You chose a side in 4 measured pairs (instructed checks left out): left 4, right 0."
    )
    shoot(page, "preference-preview-end")
    assert not Participant.objects.exists()
