"""The model-run pages in a real browser at desktop and phone sizes: the list (its header
and a partial run's coverage), a partial uploaded run, two runs tested on different
images compared, a gray run flagged for not beating no colour, the launch form with its
estimate, and the upload page; no script error (the pages' CSP included), nothing wider
than the screen. Each page is also checked
with axe-core for WCAG 2.0/2.1 A and AA (tests/e2e/axe.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import PHONE
from tests.worker.runs_helpers import queued_run, tiny_dataset
from tests.worker.test_uploaded_runs import _base, _csv, _gray, _zip
from worker.run_estimate import run_estimate
from worker.services.uploads import uploaded_run_create

pytestmark = pytest.mark.django_db(transaction=True)


def _uploaded(dataset, tmp_path, name, keep=None, colourise=lambda image: image):
    files, rows = _base(dataset, colourise=colourise)
    archive = _zip(tmp_path / f"{name}.zip", files, _csv(rows[:keep] if keep else rows))
    return uploaded_run_create(
        name=name, dataset=dataset, archive=archive, colour_space="lab", user=dataset.owner
    )


def _look(page, name: str, size: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name} is {width} px wide at {size}"
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}-{size}.png"), full_page=True)
    assert axe_violations(page) == [], name


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_run_pages_lay_out_at_both_sizes(open_page, tmp_path, size):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset(owner=ada)
    full = _uploaded(dataset, tmp_path, "elsewhere, all", colourise=_gray)
    part = _uploaded(dataset, tmp_path, "elsewhere, part", keep=4)
    queued_run(dataset, name="paper baseline", owner=ada)
    page = open_page(**(PHONE if size == "phone" else {}))
    page.goto("/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-Passphrase-1")
    page.click("button[type=submit]")

    page.goto("/runs/")
    actions = page.locator(".title-actions .button")
    expect(actions).to_have_count(2)
    heading = page.locator(".title-row h1").bounding_box()
    launch = actions.nth(0).bounding_box()
    upload = actions.nth(1).bounding_box()
    assert abs(launch["y"] - upload["y"]) < 2  # the two buttons side by side
    if size == "desktop":  # beside the title, at its right
        assert launch["x"] > heading["x"] + heading["width"] and upload["x"] > launch["x"]
    expect(page.locator(".coverage.partial")).to_have_text("4 / 6 test images")
    _look(page, "run-list", size)
    # The gray upload does not beat no colour: said in its row, the no-colour L1 beside each.
    expect(page.locator('.runs-table [data-flag="no-colour"]')).to_have_count(1)
    expect(page.locator('[data-f="no-colour-l1"]')).to_have_count(3)

    page.goto(f"/runs/{full.pk}/")
    expect(page.locator('#references [data-flag="no-colour"]')).to_contain_text(
        "it has learned little beyond grey"
    )
    expect(page.locator("#references tbody tr")).to_have_count(3)
    _look(page, "run-detail-grey", size)

    page.goto(f"/runs/{part.pk}/")
    expect(page.locator(".coverage.partial")).to_have_text("tested on 4 / 6 test images")
    _look(page, "run-detail-partial", size)

    page.goto(f"/runs/compare/?a={part.pk}&b={full.pk}")
    expect(page.locator(".alert").first).to_contain_text("tested on different images")
    expect(page.locator("td.better")).to_have_count(
        len(page.locator("#common-images td.better").all())
    )
    _look(page, "run-compare-different", size)

    page.goto(f"/runs/new/?dataset={dataset.pk}")
    expect(page.locator(".estimate")).to_contain_text("Without a GPU")
    _look(page, "run-launch", size)
    expect(page.locator('.estimate [data-f="warning"]')).to_be_visible()
    page.select_option("#id_image_size", "32")
    page.fill("#id_epochs", "2")
    short = run_estimate(dataset=dataset, image_size=32, width=64, epochs=2)
    expect(page.locator('.estimate [data-f="duration"]')).to_have_text(short.text)
    expect(page.locator('.estimate [data-f="epochs"]')).to_have_text("2 epochs")
    expect(page.locator('.estimate [data-f="warning"]')).to_be_hidden()

    page.goto("/runs/upload/")
    expect(page.locator(".example-manifest")).to_contain_text("file,image_id,true_category")
    _look(page, "run-upload", size)

    page.goto(f"/datasets/{dataset.pk}/")
    _look(page, "dataset-detail", size)
