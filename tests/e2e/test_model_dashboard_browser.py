"""The dashboard's mixed models and the per-image page in a real browser at 1280 px and
390 px: the verdicts come first and read at both sizes, the model table scrolls in its own
region, nothing is wider than the screen, no script error. Each page is checked
with axe-core for WCAG 2.0/2.1 A and AA (tests/e2e/axe.py); with
``E2E_SCREENSHOTS`` the pages are saved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import PHONE
from tests.e2e.widths import too_wide_tables
from tests.survey.analysis_helpers import half_fooled, make_study, take_part

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def study(tmp_path):
    ada = researcher_create(username="ada", password=PASSWORD)
    study = make_study(tmp_path, owner=ada)
    rule = half_fooled()
    for i in range(12):
        take_part(study, i, rule=rule)
    return study


def _look(page, name: str, size: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name} is {width} px wide at {size}"
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}-{size}.png"), full_page=True)
    assert axe_violations(page) == [], name


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_models_lead_the_dashboard_at_both_sizes(open_page, study, size):
    page = open_page(**(PHONE if size == "phone" else {}))
    page.goto(reverse("login"))
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)

    # The first request fits the models (seconds, more on a busy machine).
    page.goto(reverse("study_analysis", args=[study.pk]), timeout=120_000)
    verdicts = page.locator(".verdict")
    expect(verdicts).to_have_count(2)
    expect(verdicts.first).to_contain_text("inconclusive")
    expect(verdicts.first).to_be_in_viewport()
    models = page.locator("#models").bounding_box()
    pooled = page.get_by_role("heading", name="The paper's pooled analysis").bounding_box()
    assert models["y"] < pooled["y"]
    expect(page.locator(".model-problem").first).to_contain_text("singular fit")
    _look(page, "analysis-models", size)
    if size == "desktop":
        assert too_wide_tables(page) == {}

    page.goto(reverse("study_images", args=[study.pk]), timeout=120_000)
    expect(page.locator(".realism").first).to_contain_text("judged Real")
    _look(page, "analysis-images", size)
