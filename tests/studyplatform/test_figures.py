"""studyplatform.figures: the house style's outputs. Every kind of figure renders to an SVG
that parses as XML and a PDF, the same spec gives the same bytes, and the inline SVG is fit
for a page (ids of its own, an accessible name, no fixed size, no <style>)."""

from __future__ import annotations

import re

import pytest

from studyplatform.figures import EmptyFigure, figure_html, inline_svg, render, svg_file
from survey.analysis.figures import HistogramFigure, MetricFigure, RatesFigure
from tests.figure_helpers import parse_svg, svg_ids, svg_texts
from worker.figures import TRAIN, VAL, CurveFigure, Line, Mark

RATES = RatesFigure(
    "Rates per condition",
    ("warm", "cool & co_1, a label long enough to wrap"),
    ("fooling rate", "P(judged Real | AI)"),
    (((0.45, 0.40, 0.50), (0.50, 0.42, 0.58)), ((0.30, 0.25, 0.36), None)),
    "rate (95 % Wilson interval)",
)
METRIC = MetricFigure(
    "Fooling rate against L1 distance",
    "L1 distance of the run (test split)",
    (("warm", 0.083, (0.45, 0.40, 0.50)), ("cool & co_1", 0.12, (0.30, 0.25, 0.36))),
)
ACCURACY = HistogramFigure(
    "Participants' accuracy",
    "accuracy (share of right answers)",
    tuple(i / 10 for i in range(11)),
    (("participants", (0, 0, 1, 3, 5, 8, 3, 2, 1, 0)),),
    marker=(0.5, "chance"),
)
TIMES = HistogramFigure(
    "Participants' response times",
    "geometric mean response time (s)",
    tuple(range(0, 5001, 250)),
    (("real photographs", tuple(range(20))), ("AI images", tuple(range(20, 0, -1)))),
    unit="seconds",
)
CURVES = CurveFigure(
    "generator: L1 loss",
    "L1 loss (λ·mean |Δ|)",
    (
        Line("train L1", tuple((e, 10 / e) for e in range(1, 31)), TRAIN),
        Line("val L1", tuple((e, 5 + (e - 12) ** 2 / 50) for e in range(1, 31)), VAL, True),
    ),
    (Mark(12, "best"), Mark(30, "stopped")),
)
ONE_EPOCH = CurveFigure("generator: L1 loss", "L1 loss", (Line("train L1", ((1, 3.0),), TRAIN),))

FIGURES = {
    "rates": (RATES, {"rate (95 % Wilson interval)", "warm", "chance", "fooling rate"}),
    "metric": (METRIC, {"L1 distance of the run (test split)", "fooling rate", "cool & co_1"}),
    "accuracy": (ACCURACY, {"accuracy (share of right answers)", "participants", "chance"}),
    "times": (TIMES, {"geometric mean response time (s)", "real photographs", "AI images"}),
    "curves": (CURVES, {"epoch", "L1 loss (λ·mean |Δ|)", "best epoch (12)", "stopped epoch (30)"}),
    "one epoch": (ONE_EPOCH, {"epoch", "L1 loss", "train L1"}),
    "empty": (EmptyFigure("Rates", "No judgements yet."), {"No judgements yet."}),
}


@pytest.mark.parametrize(("spec", "texts"), FIGURES.values(), ids=FIGURES.keys())
def test_each_figure_renders_its_labels_to_svg_and_pdf_the_same_every_time(spec, texts):
    svg = render(spec, "svg")
    root = parse_svg(svg.decode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text == spec.title
    assert texts <= svg_texts(svg.decode())
    assert b"<dc:date>" not in svg  # no date: reproducible
    pdf = render(spec, "pdf")
    assert pdf.startswith(b"%PDF-")
    assert render(spec, "svg") == svg and render(spec, "pdf") == pdf


def test_the_pdf_embeds_its_font_as_truetype():
    pdf = render(CURVES, "pdf")  # pdf.fonttype 42: TrueType outlines in a CID font
    assert b"/FontFile2" in pdf and b"/CIDFontType2" in pdf and b"DejaVuSans" in pdf


def test_a_long_condition_label_is_wrapped_not_cut():
    texts = svg_texts(render(RATES, "svg").decode())
    assert "cool & co_1, a label long enough to wrap" not in texts  # not on one line
    assert {"cool & co_1, a", "label long enough", "to wrap"} <= texts


def test_the_inline_svg_has_its_own_ids_a_name_and_no_fixed_size():
    page = "".join(str(inline_svg(spec, f"figure-{i}")) for i, spec in enumerate((RATES, CURVES)))
    ids = svg_ids(page)
    assert len(ids) == len(set(ids))  # no id twice on the page
    assert all(re.match(r"figure-[01]-", i) for i in ids)
    refs = re.findall(r'(?:href="#|url\(#)([^")]+)', page)
    assert refs and set(refs) <= set(ids)  # every reference finds its own figure's element
    for svg in re.findall(r"<svg\b.*?</svg>", page, flags=re.S):
        root = parse_svg(svg)
        assert root.get("role") == "img" and root.get("aria-label")
        assert root.get("width") == "100%" and root.get("height") is None
        assert root.get("viewBox")
        assert "<style" not in svg and "<?xml" not in svg and "<metadata" not in svg


def test_the_same_data_is_drawn_once():
    svg_file.cache_clear()
    first = svg_file(RATES)
    again = RatesFigure(**{f: getattr(RATES, f) for f in RATES.__dataclass_fields__})
    assert svg_file(again) is first and svg_file.cache_info().hits == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render(RATES, "png"), "an SVG or a PDF"),
        (lambda: inline_svg(RATES, "1 bad key"), "letters, digits and hyphens"),
    ],
    ids=["another format", "a key that is no id"],
)
def test_bad_requests_are_refused_in_words(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_empty_figure_says_why_in_words_on_the_page():
    html = str(figure_html(None, "figure-x", title="Rates", empty="No judgements yet."))
    assert "No judgements yet." in html and "<svg" not in html and "Download" not in html
