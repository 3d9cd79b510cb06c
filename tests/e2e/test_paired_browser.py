"""A participant takes a paired real-vs-fake study (survey.protocols) in a real browser:
by keyboard alone on a 390 px phone screen (F / J and the arrows), and by mouse on a desktop
screen; both images and both answers fit the screen, the pair is hidden after its exposure,
practice pairs get their feedback, every page passes axe-core's WCAG 2.0/2.1 A and AA rules,
and every side chosen is stored once, in order."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from survey.models import Participant, Study, Trial
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import DESKTOP, PHONE, RESEARCHER_PASSWORD, log_in
from tests.e2e.keyboard_hints import assert_button_badges, assert_instruction_hints
from tests.e2e.widths import too_wide_tables
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = {"left": ["f", "ArrowLeft"], "right": ["j", "ArrowRight"]}
#: The sides chosen, pair by pair (2 practice + 4 test + 2 vigilance pairs).
CHOICES = ["left", "right", "right", "left", "left", "right", "right", "left"]


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=64)  # 12 test scenes
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run],
        protocol=Study.Protocol.PAIRED,
        images_per_participant=4,
        practice_trials=2,
        attention_checks=2,
        exposure_ms=1000,
        target_participants_per_condition=10,
    )


def axe_clean(page, name: str) -> None:
    violations = axe_violations(page)
    assert not violations, (name, violations)


def in_view(page, locator, what: str) -> None:
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None, what
    assert box["x"] >= 0 and box["y"] >= 0, (what, box)
    assert box["x"] + box["width"] <= size["width"] + 0.5, (what, box, size)
    assert box["y"] + box["height"] <= size["height"] + 0.5, (what, box, size)


def take(page, study, how: str, shoot, prefix: str) -> str:
    page.set_default_navigation_timeout(60_000)  # a loaded test machine: no timing asserted
    page.goto(f"/s/{study.slug}/")
    checkbox = page.get_by_label("I have read the above and agree to take part.")
    start = page.get_by_role("button", name="Start the study")
    if how == "keyboard":
        page.keyboard.press("Tab")
        expect(checkbox).to_be_focused()
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        expect(start).to_be_focused()
        page.keyboard.press("Enter")
    else:
        checkbox.click()
        start.click()
    page.wait_for_url("**/p/*/")
    public_id = page.url.rstrip("/").split("/")[-1]
    expect(page.get_by_role("heading", name="Instructions")).to_be_visible()
    expect(page.locator("#instructions")).to_contain_text("pairs of images side by side")
    assert_instruction_hints(page, "Answer with the buttons under the images.")
    axe_clean(page, f"{prefix}instructions")
    begin = page.get_by_role("button", name="Begin")
    if how == "keyboard":
        page.keyboard.press("Tab")
        expect(begin).to_be_focused()
        page.keyboard.press("Enter")
    else:
        begin.click()
    expect(page.locator("#trial")).to_be_visible()
    trials = {t.position: t for t in Trial.objects.filter(participant__public_id=public_id)}
    for position, side in enumerate(CHOICES, start=1):
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        for image in ("#stimulus-left", "#stimulus-right"):
            in_view(page, page.locator(image), image)
        for name in ("Left", "Right"):
            in_view(page, page.get_by_role("button", name=name), f"the {name} button")
        if position == 3:
            # The pair is hidden after its exposure; the answer is still possible.
            expect(page.locator("#mask")).to_be_visible(timeout=5000)
            expect(page.locator("#stimulus-left")).to_have_css("visibility", "hidden")
            shoot(page, f"{prefix}trial-hidden")
        if position == 4:
            assert_button_badges(page)
            shoot(page, f"{prefix}trial")
            axe_clean(page, f"{prefix}trial")
        page.wait_for_timeout(25)  # a person takes a moment: the response time is > 0
        with page.expect_response(lambda r: r.url.endswith("/answer")) as sent:
            if how == "keyboard":
                page.keyboard.press(KEYS[side][position % 2])
            else:
                page.get_by_role("button", name=side.capitalize()).click()
        assert sent.value.status == 200
        if position <= 2:  # practice: feedback on the real photograph's side
            real = "right" if trials[position].fake_side == "left" else "left"
            feedback = page.locator("#feedback")
            verdict = "Correct" if side == real else "Wrong"
            expect(feedback).to_contain_text(f"{verdict}: the real photograph was on the {real}.")
            go_on = page.get_by_role("button", name="Continue")
            if how == "keyboard":
                expect(go_on).to_be_focused()
                page.keyboard.press("Enter")
            else:
                go_on.click()
    page.wait_for_url(f"**/p/{public_id}/done/")
    expect(page.get_by_test_id("completion-code")).to_have_text(study.completion_code)
    return public_id


def assert_stored(public_id: str) -> None:
    participant = Participant.objects.get(public_id=public_id)
    rows = list(
        Trial.objects.filter(participant=participant)
        .order_by("position")
        .values_list("chosen_side", "fake_side", "answer", "rt_ms")
    )
    assert [r[0] for r in rows] == CHOICES
    for chosen, fake, answer, rt in rows:
        assert answer == ("real" if chosen == fake else "ai") and 0 < rt < 60_000
    assert participant.completed_at is not None


def test_a_paired_study_by_keyboard_on_a_phone(open_page, study, shoot):
    page = open_page(**PHONE)
    assert_stored(take(page, study, "keyboard", shoot, "paired-390-"))


def test_a_paired_study_by_mouse_on_a_desktop(open_page, study, shoot):
    page = open_page(**DESKTOP)
    assert_stored(take(page, study, "mouse", shoot, "paired-1280-"))


def test_without_scripts_the_exposure_limit_is_explained_and_no_answer_taken(
    open_page, study, shoot
):
    """Only the script hides a pair after its 1000 ms: without it the page says to turn
    JavaScript on, offers no Begin, no pair and no buttons, and an answer posted as a
    plain form (the buttons' form, sent anyway) stores nothing."""
    page = open_page(**DESKTOP, java_script_enabled=False)
    page.goto(f"/s/{study.slug}/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start the study").click()
    page.wait_for_url("**/p/*/")
    public_id = page.url.rstrip("/").split("/")[-1]
    needs = "This study needs JavaScript: it shows each pair for 1000 ms and then hides it"
    told = page.locator("#instructions noscript p")  # (Playwright's text search skips noscript)
    expect(told).to_be_visible()
    expect(told).to_contain_text(needs)
    expect(page.get_by_role("button", name="Begin")).to_be_hidden()
    shoot(page, "paired-no-script")
    page.goto(page.url + "?begin=1")  # a Begin link kept from elsewhere
    told = page.locator("#trial noscript p")
    expect(told).to_be_visible()
    expect(told).to_contain_text(needs)
    for hidden in ("#stimulus-left", "#stimulus-right", "#answer-form"):
        expect(page.locator(hidden)).to_be_hidden()
    shoot(page, "paired-no-script-trial")
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    sent = page.request.post(
        f"/p/{public_id}/answer",
        form={"csrfmiddlewaretoken": token, "position": "1", "answer": "left"},
        headers={"Referer": page.url},
    )
    assert sent.ok and sent.url.endswith(f"/p/{public_id}/"), sent.url  # back to the page
    assert not Trial.objects.filter(participant__public_id=public_id, answer__isnull=False).exists()


def test_the_preview_of_a_paired_study_counts_pairs(open_page, study, shoot):
    """The researcher's preview plays the pairs and ends with the score in pairs, the
    practice feedback in the paired words; nothing is recorded."""
    from studyplatform.researchers import researcher_create

    ada = researcher_create(username="ada", password=RESEARCHER_PASSWORD)
    Study.objects.filter(pk=study.pk).update(owner=ada)
    page = open_page(**DESKTOP)
    log_in(page)
    page.goto(f"/studies/{study.pk}/preview/")
    page.get_by_role("button", name="I agree: continue").click()
    page.get_by_role("button", name="Begin").click()
    total = len(CHOICES)
    for position in range(1, total + 1):
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        page.keyboard.press("f")
        if position <= 2:  # practice
            expect(page.locator("#feedback")).to_contain_text("the real photograph was on the")
            page.get_by_role("button", name="Continue").click()
    expect(page.locator("#preview-done")).to_be_visible()
    score = page.locator("[data-f=preview-score]")
    expect(score).to_contain_text("of 4 measured pairs (practice and attention checks left out)")
    shoot(page, "paired-preview-end")
    assert not Participant.objects.exists()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_paired_dashboard_in_a_browser(open_page, study, shoot, size):
    """The researcher's analysis page of a paired study: the pairs' rows and figures, no row
    a pair has no number for, nothing wider than the screen, axe-clean."""
    from django.urls import reverse

    from studyplatform.researchers import researcher_create
    from survey.services.assignment import participant_start
    from survey.services.trials import trial_answer

    for wanted in (1, 2, 3):  # each participant chooses the fake in `wanted` test pairs
        participant = participant_start(study=study)
        fooled = 0
        for t in participant.trials.order_by("position"):
            real = Trial.Side.RIGHT if t.fake_side == Trial.Side.LEFT else Trial.Side.LEFT
            choose_fake = t.kind == "main" and fooled < wanted
            fooled += choose_fake
            answer = t.fake_side if choose_fake else real
            trial_answer(participant=participant, position=t.position, answer=answer, rt_ms=800)
    ada = researcher_create(username="ada", password=RESEARCHER_PASSWORD)
    Study.objects.filter(pk=study.pk).update(owner=ada)
    page = open_page(**(PHONE if size == "phone" else DESKTOP))
    log_in(page)
    page.goto(reverse("study_analysis", args=[study.pk]))
    expect(page.get_by_text("Paired real vs fake, 2AFC").first).to_be_visible()
    expect(page.get_by_text("Binomial test of the fooling rate against 50 %").first).to_be_visible()
    for absent in ("The 2×2 tables", "Sensitivity d′", "No judgements yet."):
        assert page.get_by_text(absent).count() == 0, absent
    drawn = page.evaluate(
        "Array.from(document.querySelectorAll('figure.chart svg'))"
        ".map(svg => svg.getBoundingClientRect().height)"
    )
    assert drawn and min(drawn) > 100, drawn
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    if size == "desktop":
        assert too_wide_tables(page) == {}
    axe_clean(page, f"paired-dashboard-{size}")
    shoot(page, f"paired-dashboard-{size}")
