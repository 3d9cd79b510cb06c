"""The colour-vision screen in a real browser (headless Chromium): on a phone (390 px, by
touch and the on-screen keyboard's Enter) and on a desktop (keyboard alone), with a reload
in the middle; every plate's answer is then found once in the database, and the plate page
passes axe-core's WCAG 2.0/2.1 A and AA rules at both sizes. ``E2E_SCREENSHOTS`` keeps the
screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from survey import colour_screen as cs
from survey.models import ColourScreenAnswer, Participant
from survey.services.colour_screen import plates
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_pilot_and_checks_browser import check, shoot  # noqa: F401 (fixture)
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _patient():
    """Two shared cores under load: waits of a minute, not seconds (no timing is tested)."""
    expect.set_options(timeout=60_000)
    yield
    expect.set_options(timeout=5_000)


def slow(page):
    page.set_default_timeout(60_000)
    return page


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=10, size=48)
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study([run], images_per_participant=2, colour_screen=True)


def consent(page, study) -> Participant:
    page.goto(f"/s/{study.slug}/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start the study").click()
    expect(page.get_by_role("heading", name="Colour-vision screen")).to_be_visible()
    public_id = page.url.split("/p/")[1].split("/")[0]
    return Participant.objects.get(public_id=public_id)


def plate_loaded(page) -> bool:
    return page.evaluate(
        "() => { const i = document.querySelector('.plate img');"
        " return i.complete && i.naturalWidth === 480; }"
    )


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_screen_by_touch_or_keyboard_with_a_reload(open_page, study, shoot, size):  # noqa: F811
    page = slow(open_page(**(PHONE if size == "phone" else DESKTOP)))
    participant = consent(page, study)
    expected = plates(participant)
    for plate in expected:
        expect(page.get_by_text(f"Plate {plate.position} of {cs.PLATES}")).to_be_visible()
        page.wait_for_function(
            "() => { const i = document.querySelector('.plate img');"
            " return i.complete && i.naturalWidth > 0; }"
        )
        assert plate_loaded(page)
        if plate.position == 1:
            check(page, f"colour-screen-{size}", shoot)
        if plate.position in (1, 2):
            # Nothing wider than the screen; after the first plate (and its introduction)
            # the plate, the field and both buttons fit on it without scrolling.
            assert page.evaluate("() => document.documentElement.scrollWidth") <= (
                390 if size == "phone" else 1280
            )
        if plate.position == 2:
            check(page, f"colour-screen-plate-2-{size}", shoot)
            for name in ("Next", "I can't see a number"):
                expect(page.get_by_role("button", name=name)).to_be_in_viewport()
        if plate.position == 3:
            page.reload()
            expect(page.get_by_text(f"Plate 3 of {cs.PLATES}")).to_be_visible()
        field = page.get_by_label("Which number do you see?")
        if plate.position == 5:
            if size == "phone":
                page.get_by_role("button", name="I can't see a number").tap()
            else:
                page.keyboard.press("Tab")  # the field has the focus: Tab, Tab, Space
                page.keyboard.press("Tab")
                expect(page.get_by_role("button", name="I can't see a number")).to_be_focused()
                page.keyboard.press("Space")
        else:
            expect(field).to_be_focused()  # autofocus: type at once
            page.keyboard.type(str(plate.digit))
            page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Instructions")).to_be_visible()
    page.get_by_role("button", name="Begin").click()
    expect(page.locator("#stimulus")).to_be_visible()
    stored = list(ColourScreenAnswer.objects.filter(participant=participant))
    assert [(a.position, a.answer) for a in stored] == [
        (p.position, "" if p.position == 5 else str(p.digit)) for p in expected
    ]
    participant.refresh_from_db()
    assert (participant.colour_screen_correct, participant.colour_screen_passed) == (5, True)


def test_an_empty_answer_is_refused_in_words(open_page, study, shoot):  # noqa: F811
    page = slow(open_page(**PHONE))
    participant = consent(page, study)
    page.get_by_role("button", name="Next").tap()
    expect(page.get_by_role("alert")).to_contain_text("Please type the number you see")
    page.wait_for_function(
        "() => { const i = document.querySelector('.plate img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    assert plate_loaded(page)  # the same plate, still at hand
    check(page, "colour-screen-error-phone", shoot)
    assert not ColourScreenAnswer.objects.filter(participant=participant).exists()
    # The refusal's own status (400) is the one expected error response.
    assert [p for p in page.problems.items if p.startswith("HTTP 400")] == [f"HTTP 400: {page.url}"]
    page.problems.items.clear()
