"""A data set upload in a real browser (headless Chromium): the job page polls the worker's
import until it says how many images were imported, how many files were skipped and why,
with a link to the skipped files; at desktop and phone sizes, axe-clean."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import PHONE, log_in
from tests.worker.test_dataset_import import _jpeg_bytes
from tests.worker.test_dataset_pages import _gray_jpeg, _zip_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_import_page_says_what_was_imported_and_skipped(
    open_page, shoot, celery_worker, tmp_path, size
):
    researcher_create(username="ada", password="a-long-Passphrase-1")
    photos = [(f"city/{i}.jpg", _jpeg_bytes("city", i)) for i in range(24)]
    other = [("city/gray.jpg", _gray_jpeg()), ("city/notes.txt", b"x"), ("city/a.md", b"y")]
    archive = tmp_path / "photos.zip"
    archive.write_bytes(_zip_bytes(photos + other))
    page = open_page(**(PHONE if size == "phone" else {}))
    log_in(page)
    page.goto("/datasets/upload/")
    page.fill("#id_name", "photos")
    page.set_input_files("#id_archive", str(archive))
    page.click("form button.primary")
    expect(page.locator("#job-status")).to_have_text("done", timeout=60_000)
    outcome = page.locator("#job-outcome")
    expect(outcome).to_be_visible()
    expect(page.locator("#job-outcome-text")).to_have_text("24 images imported, 3 files skipped")
    expect(page.locator("#job-skips li")).to_have_text(["not an image file: 2", "grayscale: 1"])
    expect(page.locator("#job-counts")).to_be_hidden()
    shoot(page, f"dataset-import-done-{size}", full_page=True)
    assert not axe_violations(page)
    outcome.get_by_role("link", name="Each skipped file with its reason").click()
    facts = page.locator("#import")
    for words in ("imported24", "skipped3 (", "grayscale: 1", "not an image file: 2"):
        expect(facts).to_contain_text(words)
