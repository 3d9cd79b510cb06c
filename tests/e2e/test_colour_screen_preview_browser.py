"""The researcher's preview of a study with the colour-vision screen, in a real browser at
a desktop's and a phone's width: consent, every plate as participants see it (answered by
keyboard and by the "I can't see a number" button), then the instructions and the trials
of the preview; nothing is stored. The plate page passes axe-core's WCAG 2.0/2.1 A and AA
rules; screenshots go to ``E2E_SCREENSHOTS`` when set."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from survey import colour_screen as cs
from survey.models import ColourScreenAnswer, Participant
from tests.e2e.test_pilot_and_checks_browser import _logged_in, ada, check, shoot  # noqa: F401
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _patient():
    """Two shared cores under load: waits of a minute, not seconds (no timing is tested)."""
    expect.set_options(timeout=60_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def study(tmp_path, ada):  # noqa: F811
    dataset = tiny_dataset("syn", per_category=10, size=48)
    run = uploaded_run(dataset, tmp_path, name="warm")
    study = open_study([run], images_per_participant=2, colour_screen=True)
    study.owner = ada
    study.save(update_fields=["owner"])
    return study


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_preview_shows_the_screen_then_the_trials(
    open_page,
    live_server,
    study,
    ada,  # noqa: F811
    shoot,  # noqa: F811
    size,
):
    page = _logged_in(open_page, ada, live_server, size)
    page.set_default_timeout(60_000)
    page.goto(f"/studies/{study.pk}/preview/")
    page.get_by_role("button", name="I agree: continue").click()
    for position in range(1, cs.PLATES + 1):
        expect(page.get_by_text(f"Plate {position} of {cs.PLATES}")).to_be_visible()
        page.wait_for_function(
            "() => { const i = document.querySelector('.plate img');"
            " return i.complete && i.naturalWidth === 480; }"
        )
        expect(page.locator(".preview-banner")).to_contain_text("nothing you answer here")
        if position == 1:
            check(page, f"{size}-preview-colour-screen", shoot)
            page.get_by_label("Which number do you see?").fill("")
            page.get_by_role("button", name="Next").click()
            expect(page.get_by_role("alert")).to_contain_text("Please type the number")
            # Its status, 400, is the participants' page's for an answer it refuses.
            expected = [p for p in page.problems.items if p.startswith("HTTP 400:")]
            assert len(expected) == 1 and "position=1&answer=" in expected[0]
            page.problems.items.remove(expected[0])
        if position % 2:
            page.get_by_label("Which number do you see?").fill("7")
            page.keyboard.press("Enter")
        else:
            page.get_by_role("button", name="I can't see a number").click()
    expect(page.get_by_role("heading", name="Instructions")).to_be_visible()
    page.get_by_role("button", name="Begin").click()
    expect(page.locator("#trial")).to_be_visible()
    assert not Participant.objects.exists() and not ColourScreenAnswer.objects.exists()
