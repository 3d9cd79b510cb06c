"""The sample-size planner in a real browser, at desktop and phone sizes: reached from the
study form's link, the form sent by GET, the answer with the power curve drawn inline;
nothing wider than the screen, no script error. The page is also checked
with axe-core for WCAG 2.0/2.1 A and AA (tests/e2e/axe.py); with
``E2E_SCREENSHOTS`` a folder, its screenshots are kept there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from tests.e2e.conftest import PHONE
from tests.e2e.test_runs_pages_browser import _look

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_planner_answers_with_its_curve(open_page, size):
    researcher_create(username="ada", password="a-long-Passphrase-1")
    page = open_page(**(PHONE if size == "phone" else {}))
    page.context.set_default_timeout(60_000)  # the simulation takes seconds on a busy machine
    page.goto("/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-Passphrase-1")
    page.click("button[type=submit]")

    page.goto("/studies/new/")
    page.get_by_role("link", name="Plan the sample size").click()
    expect(page.locator("h1")).to_have_text("Plan the sample size")
    _look(page, "planner-empty", size)

    page.select_option("#id_goal", "difference")
    page.fill("#id_delta", "0.12")
    page.fill("#id_simulations", "20")
    page.get_by_role("button", name="Plan").click()
    expect(page.locator("figure.chart svg[role=img]")).to_be_visible()
    expect(page.locator("main")).to_contain_text("participants per condition")
    assert "goal=difference" in page.url  # a GET: the plan is in the address
    _look(page, "planner-result", size)

    page.fill("#id_rate", "1.5")
    page.fill("#id_images_per_participant", "25")
    page.fill("#id_seed", "")
    page.get_by_role("button", name="Plan").click()
    # Every bad input at once, beside its field and in the summary above the form.
    errors = page.locator(".has-error .error")
    expect(errors).to_have_count(3)
    expect(errors.nth(0)).to_contain_text("strictly between 0 and 1")
    expect(errors.nth(1)).to_contain_text("Must be even")
    expect(errors.nth(2)).to_have_text("This field is required.")
    summary = page.locator(".error-summary")
    expect(summary.get_by_role("link")).to_have_text(
        ["Expected fooling rate", "Images per participant", "Seed"]
    )
    summary.get_by_role("link", name="Seed").click()
    expect(page.locator("#id_seed")).to_be_focused()
    _look(page, "planner-error", size)
