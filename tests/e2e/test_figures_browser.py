"""The figures in a real browser at 1280 px and on a phone (390 px): the dashboard's and a
run page's figures fit their boxes (the page never scrolls sideways, no figure is wider
than its box) and are drawn (a figure has a height)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from tests.e2e.conftest import PHONE, log_in
from tests.survey.analysis_helpers import make_study, take_part
from tests.worker.runs_helpers import queued_run
from worker.models import EpochRecord, SubModel

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passphrase-1"

#: Each figure's drawn width and its box's width, in CSS pixels.
SIZES = """Array.from(document.querySelectorAll("figure.chart svg")).map(svg => {
  const box = svg.closest("figure").getBoundingClientRect();
  const drawn = svg.getBoundingClientRect();
  return {id: svg.closest("figure").id, width: drawn.width, height: drawn.height,
          box: box.width, left: drawn.left - box.left};
})"""


@pytest.fixture
def pages(tmp_path):
    ada = researcher_create(username="ada", password=PASSWORD)
    study = make_study(tmp_path, owner=ada)
    for i in range(6):
        take_part(study, i)
    run = queued_run(study.conditions.first().run.dataset, name="curves", owner=ada)
    generator = run.submodels.get(role=SubModel.Role.GENERATOR)
    for e in range(1, 13):
        EpochRecord.objects.create(
            submodel=generator,
            epoch=e,
            values={"train_l1": 10 / e, "val_l1": 9 + e / 4, "train_gan": 0.7, "val_gan": 0.8},
        )
    SubModel.objects.filter(pk=generator.pk).update(best_epoch=6, stopped_epoch=12)
    return {
        "dashboard": reverse("study_analysis", args=[study.pk]),
        "run": reverse("run_detail", args=[run.pk]),
    }


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_figure_fits_its_box(open_page, pages, shoot, size):
    page = open_page(**(PHONE if size == "phone" else {}))
    log_in(page, password=PASSWORD)
    for name, url in pages.items():
        page.goto(url)
        figures = page.evaluate(SIZES)
        assert len(figures) == (5 if name == "dashboard" else 2), name
        for figure in figures:
            assert figure["height"] > 100, figure
            assert figure["left"] >= 0 and figure["left"] + figure["width"] <= figure["box"] + 1
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, overflow)
        shoot(page, f"figures-{name}-{size}")
