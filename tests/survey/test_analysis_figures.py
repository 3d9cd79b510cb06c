"""The dashboard's figures: drawn for a study's real judgements with their axes and the
conditions' labels, no id twice on the page, each downloadable as SVG and PDF (the same
bytes each time), the live update sends them, an empty study says so in words."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.analysis.display import FIGURES
from tests.figure_helpers import figure_on_page, parse_svg, svg_ids, svg_texts
from tests.survey.analysis_helpers import make_study, take_part

pytestmark = pytest.mark.django_db

#: name -> texts its figure must draw (axis labels, the legend, the conditions).
TEXTS = {
    "rates": {"rate (95 % Wilson interval)", "fooling rate", "P(judged Real | AI)", "warm"},
    "l1": {"L1 distance of the run (test split)", "fooling rate", "warm", "cool & co_1"},
    "ssim": {"SSIM of the run (test split)", "fooling rate", "warm", "cool & co_1"},
    "accuracy": {"accuracy (share of right answers)", "participants", "chance"},
    "rt": {"geometric mean response time (s)", "participants", "AI images"},
}


@pytest.fixture
def ada():
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def researcher(client, ada):
    client.force_login(ada)
    return client


@pytest.fixture
def study(tmp_path, ada):
    return make_study(tmp_path, owner=ada)


def test_every_figure_is_drawn_from_the_judgements_and_downloads(researcher, study):
    for i in range(6):
        take_part(study, i)
    page = researcher.get(reverse("study_analysis", args=[study.pk])).content.decode()
    ids = svg_ids(page)
    assert len(ids) == len(set(ids)), "an id twice on the page"
    for name, title in FIGURES.items():
        figure = figure_on_page(page, title)
        assert TEXTS[name] <= svg_texts(figure), name
        assert 'role="img"' in figure and f'aria-label="{html.escape(title)}"' in figure
        for fmt in ("svg", "pdf"):
            url = reverse("study_figure", args=[study.pk, name, fmt])
            assert url in figure
            response = researcher.get(url)
            assert response.status_code == 200
            assert (
                response["Content-Type"] == {"svg": "image/svg+xml", "pdf": "application/pdf"}[fmt]
            )
            assert f'filename="study-{study.pk}-{name}.{fmt}"' in response["Content-Disposition"]
            assert researcher.get(url).content == response.content  # reproducible
            if fmt == "svg":
                parse_svg(response.content.decode())
                assert TEXTS[name] <= svg_texts(response.content.decode())
            else:
                assert response.content.startswith(b"%PDF-")
    # The live update sends the same figures.
    live = researcher.get(reverse("study_analysis_json", args=[study.pk])).json()["charts"]
    assert set(live) == set(FIGURES)
    assert TEXTS["rates"] <= svg_texts(live["rates"])


def test_the_downloads_follow_the_unfinished_choice(researcher, study):
    take_part(study, 0)
    take_part(study, 1, stop_after=3)  # unfinished: counted only on request
    page = researcher.get(reverse("study_analysis", args=[study.pk]) + "?unfinished=1")
    url = reverse("study_figure", args=[study.pk, "rates", "svg"]) + "?unfinished=1"
    assert url in page.content.decode()
    response = researcher.get(url)
    assert f"study-{study.pk}-rates-with-unfinished.svg" in response["Content-Disposition"]


def test_an_empty_study_says_so_in_words_and_its_downloads_too(researcher, study):
    page = researcher.get(reverse("study_analysis", args=[study.pk])).content.decode()
    assert "<svg" not in figure_on_page(page, FIGURES["rates"])
    assert "No judgements yet." in figure_on_page(page, FIGURES["rates"])
    assert "No participants counted yet." in figure_on_page(page, FIGURES["accuracy"])
    assert html.escape("Needs judgements and the runs' metrics.") in figure_on_page(
        page, FIGURES["l1"]
    )
    assert "Wilson" not in figure_on_page(page, FIGURES["l1"])  # no note on how to read it
    svg = researcher.get(reverse("study_figure", args=[study.pk, "rates", "svg"]))
    assert "No judgements yet." in svg_texts(svg.content.decode())


def test_one_participant_is_drawn_without_error(researcher, study):
    take_part(study, 0)
    page = researcher.get(reverse("study_analysis", args=[study.pk])).content.decode()
    assert "warm" in svg_texts(figure_on_page(page, FIGURES["rates"]))
    assert "<svg" in figure_on_page(page, FIGURES["accuracy"])


@pytest.mark.parametrize(
    ("name", "fmt"), [("power", "svg"), ("rates", "png")], ids=["no such figure", "no such format"]
)
def test_unknown_figures_and_formats_are_not_found(researcher, study, name, fmt):
    response = researcher.get(reverse("study_figure", args=[study.pk, name, fmt]))
    assert response.status_code == 404


def test_the_per_image_page_draws_each_conditions_images(researcher, study):
    for i in range(4):
        take_part(study, i)
    url = reverse("study_images", args=[study.pk])
    page = researcher.get(url).content.decode()
    ids = svg_ids(page)
    assert len(ids) == len(set(ids))
    for condition in study.conditions.all():
        figure = figure_on_page(page, f"Per-image fooling rate: {condition.label}")
        texts = svg_texts(figure)
        assert {"images, ranked by fooling rate", "AI images", "real photographs"} <= texts
        assert "fooling rate" in texts
        name = f"images-c{condition.pk}"
        for fmt in ("svg", "pdf"):
            download = reverse("study_figure", args=[study.pk, name, fmt])
            assert download in figure
            response = researcher.get(download)
            assert response.status_code == 200 and response.content == (
                researcher.get(download).content
            )
        assert "AI images" in svg_texts(
            researcher.get(download.replace(".pdf", ".svg")).content.decode()
        )


def test_the_per_image_figure_of_a_study_nobody_answered_says_so(researcher, study):
    page = researcher.get(reverse("study_images", args=[study.pk])).content.decode()
    condition = study.conditions.first()
    figure = figure_on_page(page, f"Per-image fooling rate: {condition.label}")
    assert "No image judged yet." in figure and "<svg" not in figure


def test_within_subjects_the_shared_real_photographs_have_their_own_figure(
    researcher, tmp_path, ada
):
    study = make_study(tmp_path, owner=ada, design="within")
    for i in range(3):
        take_part(study, i)
    page = researcher.get(reverse("study_images", args=[study.pk])).content.decode()
    figure = figure_on_page(page, "Per-image fooling rate: real photographs (shared)")
    assert "real photographs" in svg_texts(figure)
    download = reverse("study_figure", args=[study.pk, "images-real", "svg"])
    assert download in figure and researcher.get(download).status_code == 200
