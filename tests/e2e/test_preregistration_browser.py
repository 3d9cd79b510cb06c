"""The study page's pre-registration block in a real browser, at desktop and phone sizes:
the hash shown whole (wrapped, never cut or scrolling the page sideways), the JSON
download whose SHA-256 is that hash, and axe-core's WCAG 2.0/2.1 A and AA rules.
Screenshots go to ``E2E_SCREENSHOTS`` when set."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.models import PreRegistration
from survey.services.studies import study_create, study_open
from tests.e2e.test_pilot_and_checks_browser import _logged_in, check
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shoot():
    """Full-page screenshots (the block is below the fold) under ``E2E_SCREENSHOTS``."""
    folder = os.environ.get("E2E_SCREENSHOTS")

    def take(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def study(tmp_path):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset("syn", per_category=20, size=32, owner=ada)
    runs = [
        uploaded_run(dataset, tmp_path, name="warm", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool", style="cool", owner=ada),
    ]
    draft = study_create(
        name="Pre-registered study",
        runs=runs,
        user=ada,
        labels=["Warm", "Cool"],
        images_per_participant=4,
        attention_checks=1,
        hypotheses="H1: the warm run's images are taken for photographs as often as not.",
    )
    return study_open(study=draft), ada


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_preregistration_block(open_page, live_server, study, shoot, size, tmp_path):
    study, ada = study
    prereg = PreRegistration.objects.get(study=study)
    page = _logged_in(open_page, ada, live_server, size)
    page.goto(f"/studies/{study.pk}/")
    block = page.locator("section", has=page.get_by_role("heading", name="Pre-registration"))
    expect(block.locator('[data-f="preregistration-sha256"]')).to_have_text(prereg.sha256)
    block.scroll_into_view_if_needed()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # the hash wraps
    check(page, f"{size}-study-preregistration", shoot)
    folder = Path(tmp_path)
    with page.expect_download() as download:
        block.get_by_role("link", name="Pre-registration (JSON)").click()
    saved = folder / download.value.suggested_filename
    download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == prereg.sha256
