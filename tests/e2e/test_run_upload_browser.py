"""A run upload in a real browser (headless Chromium): the form posts, the job page polls
the worker's check until it links to the run, or lists every problem of a refused upload;
at desktop and phone sizes, with no script error (the pages' CSP included)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from tests.e2e.conftest import PHONE
from tests.worker.runs_helpers import tiny_dataset
from tests.worker.test_uploaded_runs import _base, _csv, _zip
from worker.models import ImportJob

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(page, dataset, archive) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-Passphrase-1")
    page.click("button[type=submit]")
    page.goto("/runs/upload/")
    page.fill("#id_name", "elsewhere")
    page.select_option("#id_dataset", str(dataset.pk))
    page.set_input_files("#id_archive", str(archive))
    page.click("form button.primary")
    expect(page.locator("h1")).to_have_text("Checking the run “elsewhere”")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_run_upload_is_followed_to_its_run(open_page, shoot, celery_worker, tmp_path, size):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    page = open_page(**(PHONE if size == "phone" else {}))
    _upload(page, dataset, _zip(tmp_path / "run.zip", files, _csv(rows)))
    expect(page.locator("#job-status")).to_have_text("done", timeout=60_000)
    expect(page.locator("#job-count")).to_have_text(f"{len(rows)} / {len(rows)} images checked")
    link = page.locator("#job-run")
    expect(link).to_be_visible()
    expect(page.locator("#job-refused")).to_be_hidden()
    shoot(page, f"upload-done-{size}")
    link.click()
    expect(page).to_have_url(f"/runs/{ImportJob.objects.get().run_id}/")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_refused_run_upload_lists_its_problems(open_page, shoot, celery_worker, tmp_path, size):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset(owner=ada)
    files, rows = _base(dataset)
    rows[0]["image_id"] = "999999"
    rows[1]["file"] = "nowhere.png"
    page = open_page(**(PHONE if size == "phone" else {}))
    _upload(page, dataset, _zip(tmp_path / "run.zip", files, _csv(rows)))
    expect(page.locator("#job-status")).to_have_text("failed", timeout=60_000)
    problems = page.locator("#job-problems li")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("999999")
    expect(problems.nth(1)).to_contain_text("nowhere.png")
    expect(page.locator("#job-run-done")).to_be_hidden()
    shoot(page, f"upload-failed-{size}")
