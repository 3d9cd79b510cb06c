"""Long names without spaces wrap instead of widening the page, wide tables scroll in their
own region, every page passes axe-core's WCAG 2.1 AA rules, and the site has a favicon:
every researcher page, at desktop and phone widths, with a data set, runs, a study, labels
and user names of the longest allowed length."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from studyplatform.sharing import share_set
from survey.services.studies import study_create, study_open
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import PHONE, log_in
from tests.e2e.widths import too_wide_tables
from tests.survey.analysis_helpers import take_part
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passphrase-1"
USERNAME = "ada" + "a" * 147  # Django's longest user name: 150


def _long(start: str, length: int = 200) -> str:
    return (start + "_Abcdefghij" * 40)[:length]


@pytest.fixture
def world(tmp_path):
    ada = researcher_create(username=USERNAME, password=PASSWORD)
    colleague = researcher_create(username=_long("colleague", 150), password=PASSWORD)
    dataset = tiny_dataset(_long("dataset"), per_category=10, size=32, owner=ada)
    runs = [
        uploaded_run(dataset, tmp_path, name=_long("warm"), owner=ada),
        uploaded_run(dataset, tmp_path, name=_long("cool"), style="cool", owner=ada),
    ]
    study = study_create(
        runs=runs,
        user=ada,
        name=_long("study"),
        labels=[_long("labelwarm", 100), _long("labelcool", 100)],
        images_per_participant=4,
        practice_trials=1,
        attention_checks=1,
    )
    study = study_open(study=study)
    for i in range(3):
        take_part(study, i, stop_after=None if i < 2 else 1)
    for obj in (dataset, runs[0], study):
        share_set(obj=obj, username=colleague.username, level="view", by=ada)
    return {"dataset": dataset, "runs": runs, "study": study}


def _pages(world) -> dict[str, str]:
    dataset, (a, b), study = world["dataset"], world["runs"], world["study"]
    return {
        "home": reverse("home"),
        "datasets": reverse("datasets"),
        "dataset": reverse("dataset_detail", args=[dataset.pk]),
        "runs": reverse("runs"),
        "run": reverse("run_detail", args=[a.pk]),
        "compare": reverse("runs_compare") + f"?a={a.pk}&b={b.pk}",
        "run-new": reverse("run_launch"),
        "studies": reverse("studies"),
        "study": reverse("study_detail", args=[study.pk]),
        "study-new": reverse("study_new"),
        "study-edit": reverse("study_edit", args=[study.pk]),
        "stimuli": reverse("study_stimuli", args=[study.pk]),
        "participants": reverse("study_participants", args=[study.pk]),
        "participant": reverse(
            "study_participant", args=[study.pk, study.participants.order_by("pk").first().pk]
        ),
        "analysis": reverse("study_analysis", args=[study.pk]),
        "images": reverse("study_images", args=[study.pk]),
        "display": reverse("study_display_report", args=[study.pk]),
        "plan": reverse("study_plan"),
        "password": reverse("password_change"),
        "dataset-upload": reverse("dataset_upload"),
        "run-upload": reverse("run_upload"),
        "dataset-delete": reverse("dataset_delete", args=[dataset.pk]),
        "run-delete": reverse("run_delete", args=[b.pk]),
        "study-delete": reverse("study_delete", args=[study.pk]),
    }


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_long_names_wrap_on_every_page(open_page, world, shoot, size):
    page = open_page(**(PHONE if size == "phone" else {}))
    log_in(page, USERNAME, PASSWORD)
    too_wide, inaccessible = {}, {}
    for name, url in _pages(world).items():
        page.goto(url)
        assert world["study"].name[:40] in page.content() or name not in {"study", "studies"}
        # Against the width asked for: a phone's browser widens its window to the page.
        width = page.evaluate("document.documentElement.scrollWidth")
        overflow = width - page.viewport_size["width"]
        if overflow > 0:
            too_wide[name] = overflow
        shoot(page, f"layout-{name}-{size}")
        if violations := axe_violations(page):
            inaccessible[name] = violations
    assert not too_wide, f"pages wider than the window (by px): {too_wide}"
    assert not inaccessible, f"WCAG 2.1 AA violations (axe-core): {inaccessible}"


def test_a_wide_table_scrolls_in_a_focusable_region(open_page, world):
    page = open_page(**PHONE)
    log_in(page, USERNAME, PASSWORD)
    page.goto(reverse("study_analysis", args=[world["study"].pk]))
    # Every table that is wider than its place sits in a region one can scroll with keys.
    unreachable = page.evaluate(
        """() => [...document.querySelectorAll('table')].filter(t => {
             const box = t.closest('.scroll-x');
             const wide = t.scrollWidth > t.parentElement.clientWidth;
             return wide && !(box && box.tabIndex === 0 && box.getAttribute('aria-label'));
           }).length"""
    )
    assert unreachable == 0


def test_the_favicon_is_declared_and_favicon_ico_answers(open_page):
    page = open_page()
    response = page.goto(reverse("login"))
    assert response.ok
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href and href.endswith(".svg")
    icon = page.request.get(href)
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    legacy = page.request.get("/favicon.ico")  # what browsers ask for by themselves
    assert legacy.ok and legacy.body() == icon.body()
    assert get_user_model().objects.count() == 0  # nothing needed to be logged in


def test_the_analysis_says_when_it_updated_with_the_time_zone(open_page, world):
    page = open_page(timezone_id="Asia/Tokyo")
    log_in(page, USERNAME, PASSWORD)
    page.goto(reverse("study_analysis", args=[world["study"].pk]))
    # The first poll comes after 5 s; the time is the reader's, so its zone is named.
    expect(page.locator("[data-live-state]")).to_contain_text(
        re.compile(r"updated .*(GMT\+9|JST)"), timeout=15_000
    )


def test_analysis_tables_fit_their_card_on_a_desktop_with_few_participants(open_page, world, shoot):
    # Three participants (one unfinished): every cell carries a 'fewer than 5' note, which
    # must wrap rather than push the second condition's numbers off-screen.
    page = open_page()
    log_in(page, USERNAME, PASSWORD)
    page.goto(reverse("study_analysis", args=[world["study"].pk]))
    shoot(page, "analysis-tables-desktop", full_page=True)
    phone = open_page(**PHONE)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(reverse("study_analysis", args=[world["study"].pk]))
    shoot(phone, "analysis-tables-phone", full_page=True)  # the tables scroll sideways there
    assert too_wide_tables(page) == {}


def test_a_runs_samples_show_each_caption_under_its_images(open_page, world, shoot):
    """The participant page's side-by-side pair once styled the run page's samples too: a
    caption beside its images, and figures with a longer one ("routed to …") shifted."""
    from worker.models import ColourisedImage

    run = world["runs"][0]
    routed = ColourisedImage.objects.filter(run=run).first()
    others = [c for c in world["dataset"].categories if c != routed.source.category]
    ColourisedImage.objects.filter(pk=routed.pk).update(routed_category=others[0])
    page = open_page()
    log_in(page, USERNAME, PASSWORD)
    page.goto(reverse("run_detail", args=[run.pk]))
    expect(page.get_by_text(f"routed to {others[0]}")).to_be_visible()
    figures = page.locator("figure.sample")
    assert figures.count() > 1
    for i in range(figures.count()):
        images = figures.nth(i).locator(".pair-images").bounding_box()
        caption = figures.nth(i).locator("figcaption").bounding_box()
        assert caption["y"] >= images["y"] + images["height"] - 0.5, (i, images, caption)
        assert abs(caption["x"] - images["x"]) < 0.5, (i, images, caption)
    figures.first.scroll_into_view_if_needed()
    shoot(page, "run-samples")
