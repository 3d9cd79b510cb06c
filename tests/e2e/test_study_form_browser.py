"""The New study form in a browser: a protocol's preset keeps what the researcher typed,
Enter in a field still creates the study, and the form stays accessible (axe-core) at
desktop and phone widths."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.models import Study
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import PHONE, RESEARCHER_PASSWORD, log_in
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(tmp_path):
    ada = researcher_create(username="ada", password=RESEARCHER_PASSWORD)
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    return uploaded_run(dataset, tmp_path, name="warm run", owner=ada)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_preset_keeps_the_typed_fields_and_enter_creates_the_study(open_page, run, shoot, size):
    page = open_page(**(PHONE if size == "phone" else {}))
    log_in(page)
    page.goto(reverse("study_new"))
    page.get_by_label("Name").fill("My pilot")
    page.get_by_role("checkbox", name="warm run").check()
    page.get_by_label("Consent text").fill("I agree to take part.")
    page.get_by_role("button", name="Paired real vs fake, 2AFC").click()
    page.wait_for_load_state()
    expect(page.get_by_label("Name")).to_have_value("My pilot")
    expect(page.get_by_role("checkbox", name="warm run")).to_be_checked()
    expect(page.get_by_label("Consent text")).to_have_value("I agree to take part.")
    expect(page.locator("select[name=protocol]")).to_have_value("paired")
    expect(page.get_by_label("Exposure time (ms)")).to_have_value("1000")
    expect(page.locator(".error")).to_have_count(0)
    shoot(page, f"study-new-preset-{size}", full_page=True)
    assert not axe_violations(page)

    # Small enough for the tiny data set; Enter in a field submits the whole form.
    page.get_by_label("Images (or pairs) per participant").fill("4")
    page.get_by_label("Practice trials").fill("1")
    page.get_by_label("Attention checks").fill("1")
    page.get_by_label("Target participants per condition").fill("10")
    page.get_by_label("Name").press("Enter")
    page.wait_for_url(lambda url: "/new" not in url)
    study = Study.objects.get()
    assert (study.name, study.protocol, study.exposure_ms) == ("My pilot", "paired", 1000)
    assert study.consent_text == "I agree to take part."
