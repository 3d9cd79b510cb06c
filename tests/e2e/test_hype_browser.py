"""A participant takes a HYPE_time study (survey.hype) in a real browser, by keyboard alone
on a 390 px phone screen: each image is shown for the exposure the server's staircase
stored on its trial, then followed by its four backward masks and hidden; the answer keys
work, practice gets its feedback, the pages pass axe-core's WCAG 2.0/2.1 A and AA rules,
and every answer is stored once with its display measured against the trial's own exposure.
No timing is asserted (headless browsers have no real vertical sync)."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.hype import staircase
from survey.models import Participant, Study, Trial, TrialDisplay
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.keyboard_hints import assert_button_badges, assert_instruction_hints
from tests.e2e.widths import too_wide_tables
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=64)
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run],
        protocol=Study.Protocol.HYPE_TIME,
        images_per_participant=6,
        practice_trials=1,
        attention_checks=1,
        target_participants_per_condition=10,
    )


def axe_clean(page, name: str) -> None:
    violations = axe_violations(page)
    assert not violations, (name, violations)


def in_view(page, locator, what: str) -> None:
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None, what
    assert box["x"] + box["width"] <= size["width"] + 0.5, (what, box, size)
    assert box["y"] + box["height"] <= size["height"] + 0.5, (what, box, size)


def take(page, study, how: str, shoot, prefix: str) -> tuple[str, list[str]]:
    """Take part; every measured image answered right (the attention check: AI)."""
    page.set_default_navigation_timeout(60_000)
    masks: list[str] = []
    page.on("request", lambda r: masks.append(r.url) if "/mask/" in r.url else None)
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
    expect(page.locator("#instructions")).to_contain_text("covered by a few flashes")
    assert_instruction_hints(page, "Answer with the buttons under the image.")
    axe_clean(page, f"{prefix}instructions")
    shoot(page, f"{prefix}instructions")
    begin = page.get_by_role("button", name="Begin")
    if how == "keyboard":
        page.keyboard.press("Tab")
        expect(begin).to_be_focused()
        page.keyboard.press("Enter")
    else:
        begin.click()
    trials = list(
        Trial.objects.filter(participant__public_id=public_id)
        .select_related("stimulus")
        .order_by("position")
    )
    for t in trials:
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(t.position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        # The image goes, the masks come and go, the box says the image is hidden.
        expect(page.locator("#mask")).to_be_visible(timeout=5000)
        expect(page.locator("#stimulus")).to_have_css("visibility", "hidden")
        expect(page.locator("#backmask")).to_be_hidden()
        in_view(page, page.get_by_role("button", name="Real"), "the Real button")
        if t.position == 3:
            assert_button_badges(page)
            shoot(page, f"{prefix}trial-hidden")
            if os.environ.get("E2E_SCREENSHOTS"):  # what a mask looks like (for the eye only)
                page.evaluate(
                    "() => { const m = document.getElementById('backmask');"
                    " document.getElementById('mask').hidden = true;"
                    " m.src = location.pathname + 'mask/3/1'; m.hidden = false; }"
                )
                page.wait_for_function("() => document.getElementById('backmask').naturalWidth")
                shoot(page, f"{prefix}trial-mask")
                page.evaluate(
                    "() => { document.getElementById('backmask').hidden = true;"
                    " document.getElementById('mask').hidden = false; }"
                )
            axe_clean(page, f"{prefix}trial")
        value = "ai" if t.kind == "attention" or not t.stimulus.is_real else "real"
        with page.expect_response(lambda r: r.url.endswith("/answer")) as sent:
            if how == "keyboard":
                page.keyboard.press("r" if value == "real" else "a")
            else:
                page.get_by_role("button", name="Real" if value == "real" else "AI").click()
        assert sent.value.status == 200
        if t.kind == "practice":
            go_on = page.get_by_role("button", name="Continue")
            expect(page.locator("#feedback")).to_contain_text("Correct:")
            if how == "keyboard":
                expect(go_on).to_be_focused()
                page.keyboard.press("Enter")
            else:
                go_on.click()
    page.wait_for_url(f"**/p/{public_id}/done/")
    return public_id, masks


def assert_stored(public_id: str, masks: list[str]) -> None:
    participant = Participant.objects.get(public_id=public_id)
    trials = list(Trial.objects.filter(participant=participant).order_by("position"))
    assert participant.completed_at is not None
    assert all(t.answer is not None for t in trials)
    main = [t.exposure_ms for t in trials if t.kind == "main"]
    assert main == list(staircase([True] * len(main)).exposures) == [500, 500, 500, 400, 400, 400]
    for t in trials:  # every trial's four masks were fetched
        for k in range(1, 5):
            assert any(u.endswith(f"/p/{public_id}/mask/{t.position}/{k}") for u in masks)
    for d in TrialDisplay.objects.filter(trial__participant=participant).select_related("trial"):
        assert d.status == "measured" and d.target_ms == d.trial.exposure_ms
        assert d.exposure_ms is not None and d.frame_ms is not None


def test_a_hype_time_study_by_keyboard_on_a_phone(open_page, study, shoot):
    page = open_page(**PHONE)
    assert_stored(*take(page, study, "keyboard", shoot, "hype-390-"))


def test_a_hype_time_study_by_mouse_on_a_desktop_and_its_analysis(open_page, study, shoot):
    page = open_page(**DESKTOP)
    assert_stored(*take(page, study, "mouse", shoot, "hype-1280-"))
    # The researcher's analysis page: the protocol, its statistic, what is left out.
    ada = researcher_create(username="ada", password=PASSWORD)
    Study.objects.filter(pk=study.pk).update(owner=ada)
    for size, options in (("1280", DESKTOP), ("390", PHONE)):
        page = open_page(**options)
        page.goto(reverse("login"))
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(reverse("study_analysis", args=[study.pk]), timeout=120_000)
        section = page.locator("#hype")
        expect(section).to_contain_text("Exposure threshold (HYPE_time)")
        expect(section).to_contain_text("300 ms")  # six right: 500 ×3, 400 ×3, ends on 300
        expect(section).to_contain_text("Left out for this protocol")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], (size, width)
        section.locator("summary").click()
        if size == "1280":
            assert too_wide_tables(page) == {}
        shoot(page, f"hype-{size}-analysis")
        axe_clean(page, f"hype-{size}-analysis")


def test_without_scripts_there_is_no_begin_only_what_to_do(open_page, study, shoot):
    """A HYPE_time exposure is timed by the script: without it the page says to turn
    JavaScript on, and offers no Begin that would lead nowhere."""
    page = open_page(**DESKTOP, java_script_enabled=False)
    page.goto(f"/s/{study.slug}/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start the study").click()
    page.wait_for_url("**/p/*/")
    told = page.locator("#instructions noscript p")  # (Playwright's text search skips noscript)
    expect(told).to_be_visible()
    expect(told).to_contain_text("This study needs JavaScript")
    expect(page.get_by_role("button", name="Begin")).to_be_hidden()
    shoot(page, "hype-no-script")
